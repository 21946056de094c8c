"""RocksDB tables' memory, as RocksDB counts it, on /metrics."""

from pathlib import Path

from faust import App
from pydantic import BaseModel

from services.runtime.settings import ServiceSettings
from services.runtime.store_metrics import StoreMemory
from services.runtime.tables import ModelTable


class Thing(BaseModel):
    name: str


def app_with_table(tmp_path: Path, store: str) -> tuple[App, ModelTable[Thing]]:
    configured = ServiceSettings(service="test", web_port=8009, store=store)
    app = App(f"test-store-memory-{tmp_path.name}", store=configured.store, datadir=str(tmp_path))
    app.table_options = configured.table_options  # type: ignore[attr-defined]
    return app, ModelTable(app, "things", Thing, help="things")


def samples(collector: StoreMemory) -> dict[tuple[str, str], float]:
    return {
        (s.labels["table"], s.labels["kind"]): s.value
        for family in collector.collect()
        for s in family.samples
    }


def test_each_table_reports_the_memtables_of_all_its_open_partitions(tmp_path: Path) -> None:
    app, things = app_with_table(tmp_path, "rocksdb://")
    collector = StoreMemory()
    collector.apps.add(app)
    name = things.table.name
    assert samples(collector)[(name, "memtables")] == 0  # no partition open yet
    store = things.table.data
    for partition in (0, 1):
        db = store._db_for_partition(partition)  # type: ignore[attr-defined]
        for n in range(2_000):
            db[f"key-{n}".encode()] = b"x" * 500
    figures = samples(collector)
    assert set(figures) == {(name, "memtables"), (name, "block_cache"), (name, "table_readers")}
    # 2 partitions x 2,000 values of 500 bytes, in the write buffers until flushed.
    assert figures[(name, "memtables")] >= 2 * 2_000 * 500


def test_tables_in_memory_report_nothing(tmp_path: Path) -> None:
    app, _ = app_with_table(tmp_path, "memory://")
    collector = StoreMemory()
    collector.apps.add(app)
    assert samples(collector) == {}


def test_a_partition_closed_meanwhile_counts_for_nothing(tmp_path: Path) -> None:
    app, things = app_with_table(tmp_path, "rocksdb://")
    collector = StoreMemory()
    collector.apps.add(app)
    store = things.table.data
    store._db_for_partition(0)[b"k"] = b"v" * 1000  # type: ignore[attr-defined]
    store._db_for_partition(1).close()  # type: ignore[attr-defined]
    assert samples(collector)[(things.table.name, "memtables")] > 0
