"""ModelTable: a read-modify-write of a frozen model decodes the stored value once,
and a read always gives what the stored bytes decode to. And the tables' manager."""

from pathlib import Path
from typing import Any

import faust
import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter

from services.runtime.consumer import App
from services.runtime.service import ServiceRuntime
from services.runtime.settings import ServiceSettings
from services.runtime.tables import ModelTable, PromptTableManager


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    count: int = 0


class Mutable(BaseModel):
    name: str
    count: int = 0


class CountingAdapter:
    """The table's TypeAdapter, counting the decodes."""

    def __init__(self, model: type[BaseModel]) -> None:
        self._adapter: TypeAdapter[Any] = TypeAdapter(model)
        self.decodes = 0

    def validate_json(self, raw: bytes) -> Any:
        self.decodes += 1
        return self._adapter.validate_json(raw)

    def dump_json(self, value: Any) -> bytes:
        return self._adapter.dump_json(value)


def table(model: type[BaseModel]) -> tuple[ModelTable[Any], CountingAdapter, list[Any]]:
    app = faust.App(f"test-tables-{model.__name__}", store="memory://")
    models: ModelTable[Any] = ModelTable(app, "things", model, help="things")
    # A plain dict for the Faust table: writing a real one needs a current event.
    models.table = {}  # type: ignore[assignment]
    counting = models._json = CountingAdapter(model)  # type: ignore[assignment]
    befores: list[Any] = []
    models.on_write(lambda key, before, after: befores.append(before))
    return models, counting, befores


def test_a_read_modify_write_of_a_frozen_model_decodes_once() -> None:
    things, counting, befores = table(Frozen)
    things["k"] = Frozen(name="a")
    counting.decodes = 0
    read = things.get("k")
    assert read is not None
    things["k"] = read.model_copy(update={"count": 1})
    assert counting.decodes == 1
    assert befores[-1] == Frozen(name="a")


def test_a_mutable_model_is_decoded_for_every_read() -> None:
    # Its handler may change the value it read in place: the before-value must not be that.
    things, counting, befores = table(Mutable)
    things["k"] = Mutable(name="a")
    counting.decodes = 0
    read = things.get("k")
    assert read is not None
    read.count = 5
    things["k"] = read
    assert counting.decodes == 2
    assert befores[-1] == Mutable(name="a")


def test_a_read_after_the_stored_bytes_changed_decodes_them() -> None:
    # A changelog applied by recovery or a standby writes the store beneath the table.
    things, _, _ = table(Frozen)
    things["k"] = Frozen(name="a")
    assert things.get("k") == Frozen(name="a")
    things.table[b"k"] = Frozen(name="b").model_dump_json().encode()
    assert things.get("k") == Frozen(name="b")
    assert things.get("other") is None


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_read_after_a_write_gives_the_decoded_value_not_the_object_written() -> None:
    # model_copy(update=...) does not validate; what is read must be what the bytes say.
    things, _, _ = table(Frozen)
    unvalidated = Frozen(name="a").model_copy(update={"count": "7"})
    things["k"] = unvalidated
    read = things.get("k")
    assert read is not None
    assert read.count == 7
    assert read is not unvalidated


def test_a_deleted_key_reads_as_missing() -> None:
    things, _, _ = table(Frozen)
    things["k"] = Frozen(name="a")
    assert things.get("k") is not None
    del things["k"]
    assert things.get("k") is None


def rocksdb_table(tmp_path: Path, **settings: Any) -> Any:
    """The RocksDB store of a ModelTable on an app configured as the runtime does."""
    configured = ServiceSettings(service="test", web_port=8009, store="rocksdb://", **settings)
    app = App(f"test-rocksdb-{tmp_path.name}", store=configured.store, datadir=str(tmp_path))
    app.table_options = configured.table_options
    return ModelTable(app, "things", Frozen, help="things").table.data


def test_rocksdb_tables_bound_their_memory_per_partition(tmp_path: Path) -> None:
    options = rocksdb_table(tmp_path).rocksdb_options
    # Faust's defaults are 3 x 64 MiB of write buffers and a 2 GiB block cache.
    assert options.write_buffer_size == 4 * 1024 * 1024
    assert options.max_write_buffer_number == 2
    assert options.block_cache_size == 8 * 1024 * 1024


def test_rocksdb_memory_is_a_setting(tmp_path: Path) -> None:
    options = rocksdb_table(tmp_path, rocksdb_write_buffer_mib=16, rocksdb_block_cache_mib=64).rocksdb_options
    assert options.write_buffer_size == 16 * 1024 * 1024
    assert options.block_cache_size == 64 * 1024 * 1024


def test_in_memory_tables_get_no_rocksdb_options() -> None:
    assert ServiceSettings(service="test", web_port=8009, store="memory://").table_options == {}


async def test_a_worker_starts_its_tables_without_faust_s_second_of_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = ServiceRuntime(ServiceSettings(service="test", web_port=8009), title="test", description="")
    manager: Any = runtime.app.tables
    assert isinstance(manager, PromptTableManager)
    done: list[str] = []

    async def step(name: str) -> None:
        done.append(name)

    async def sleep(seconds: float) -> None:
        done.append(f"sleep {seconds}")

    monkeypatch.setattr(manager, "_update_channels", lambda: step("channels"))
    monkeypatch.setattr(type(manager.recovery), "start", lambda self: step("recovery"))
    monkeypatch.setattr(manager, "sleep", sleep)
    await manager.on_start()
    assert done == ["channels", "recovery"]
