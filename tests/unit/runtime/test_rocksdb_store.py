"""Our RocksDB store: Faust's, without a full garbage collection per table on every rebalance."""

import gc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust import App
from faust.types import TP
from pydantic import BaseModel

from services.runtime.changelog_fence import Fence
from services.runtime.rocksdb_store import BEFORE, RocksDBStore, faust_store, restore_writes_in_flight
from services.runtime.service import ServiceRuntime
from services.runtime.settings import ServiceSettings
from services.runtime.tables import ModelTable


class Thing(BaseModel):
    name: str


def things(tmp_path: Path, *, planted: bool = True) -> tuple[ModelTable[Thing], Any]:
    """A table on our store, with one value in partition 0 (`planted`); and its store."""
    app = App(f"test-rocksdb-store-{tmp_path.name}", store=faust_store("rocksdb://"), datadir=str(tmp_path))
    table = ModelTable(app, "things", Thing, help="things")
    store = table.table.data
    if planted:
        store._db_for_partition(0)[b"lead-1"] = b"{}"  # type: ignore[attr-defined]
    return table, store


def collections(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """Counts full collections from now on."""
    runs: list[None] = []
    collect = gc.collect

    def counted(*args: Any) -> int:
        runs.append(None)
        return collect(*args)

    monkeypatch.setattr(gc, "collect", counted)
    return runs


def test_a_worker_on_rocksdb_keeps_its_tables_in_this_store(tmp_path: Path) -> None:
    settings = ServiceSettings(service="orders", web_port=8009, store="rocksdb://", data_dir=tmp_path)
    runtime = ServiceRuntime(settings, title="orders", description="")
    table = ModelTable(runtime.app, "things", Thing, help="things")
    assert isinstance(table.table.data, RocksDBStore)
    assert faust_store("memory://") == "leadflow-memory://"


def test_a_partition_revoked_and_assigned_again_opens_at_once_without_a_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = things(tmp_path)
    runs = collections(monkeypatch)
    store.revoke_partitions(table.table, {TP(table.changelog_topic, 0)})
    assert 0 not in store._dbs
    assert store._db_for_partition(0)[b"lead-1"] == b"{}"  # the lock was released with the reference
    assert runs == []


def test_a_database_held_in_a_reference_cycle_is_collected_when_its_partition_opens_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = things(tmp_path)

    class Holder:
        pass

    runs = collections(monkeypatch)
    gc.disable()  # no automatic collection may free the cycle before the reopening
    try:
        holder = Holder()
        holder.cycle = holder  # type: ignore[attr-defined]
        holder.db = store._db_for_partition(0)  # type: ignore[attr-defined]
        del holder
        store.revoke_partitions(table.table, {TP(table.changelog_topic, 0)})
        assert store._db_for_partition(0)[b"lead-1"] == b"{}"
    finally:
        gc.enable()
    assert len(runs) == 1


async def test_stopping_drops_every_database_without_a_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store = things(tmp_path)
    store._db_for_partition(1)[b"lead-1"] = b"{}"
    runs = collections(monkeypatch)
    await store.stop()
    assert store._dbs == {}
    assert runs == []


WRITTEN = Fence(3, 1_000)  # the generation and time of the acknowledged writes


class _Handling:
    """What Faust sets while an agent handles a record of `partition`."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


def _writing(monkeypatch: pytest.MonkeyPatch, partition: int) -> None:
    monkeypatch.setattr("services.runtime.rocksdb_store.current_event", lambda: _Handling(partition))


def _reopened(tmp_path: Path) -> Any:
    """The store of `things`, as a restarted worker opens it."""
    gc.collect()
    return things(tmp_path, planted=False)[1]


def test_a_write_in_flight_is_undone_after_a_stop_that_was_not_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = things(tmp_path)  # lead-1 stored in partition 0
    _writing(monkeypatch, 0)
    table.table.data[b"lead-1"] = b'{"name": "changed"}'  # its changelog record never acknowledged
    table.table.data[b"lead-2"] = b'{"name": "new"}'  # this one's was
    store.on_changelog_acked(TP("things-changelog", 0), 0, b"lead-2", WRITTEN)
    table.table.data[b"lead-3"] = b'{"name": "ghost"}'  # never acknowledged either
    assert store[b"lead-1"] == b'{"name": "changed"}'
    # Our own keys stay hidden from the table.
    assert sorted(store._visible_keys(store._db_for_partition(0))) == [b"lead-1", b"lead-2", b"lead-3"]
    store._dbs.clear()  # SIGKILL: no stop, nothing flushed but RocksDB's own log

    assert restore_writes_in_flight(tmp_path / "v1" / "tables") == 2
    store = _reopened(tmp_path)
    db = store._db_for_partition(0)
    assert db[b"lead-1"] == b"{}"
    assert db[b"lead-2"] == b'{"name": "new"}'
    assert b"lead-3" not in db
    assert store.persisted_offset(TP("things-changelog", 0)) == 0
    # Undone once: a second start finds nothing left to undo.
    del db
    store._dbs.clear()
    gc.collect()
    assert restore_writes_in_flight(tmp_path / "v1" / "tables") == 0


def _written_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelTable[Thing], Any]:
    """lead-1 written twice; the first write's changelog record acknowledged."""
    table, store = things(tmp_path)
    _writing(monkeypatch, 0)
    table.table.data[b"lead-1"] = b'{"name": "one"}'
    table.table.data[b"lead-1"] = b'{"name": "two"}'
    store.on_changelog_acked(TP("things-changelog", 0), 0, b"lead-1", WRITTEN)
    return table, store


def test_a_key_written_twice_in_flight_keeps_the_value_before_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, store = _written_twice(tmp_path, monkeypatch)
    del table.table.data[b"lead-1"]
    store._dbs.clear()

    assert restore_writes_in_flight(tmp_path / "v1" / "tables") == 1
    # Back to the value before both; the replay from offset 0 brings back what reached the changelog.
    assert _reopened(tmp_path)._db_for_partition(0)[b"lead-1"] == b"{}"


def test_once_every_write_is_acknowledged_nothing_is_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store = _written_twice(tmp_path, monkeypatch)
    store.on_changelog_acked(TP("things-changelog", 0), 1, b"lead-1", WRITTEN)
    store._dbs.clear()
    assert restore_writes_in_flight(tmp_path / "v1" / "tables") == 0
    assert _reopened(tmp_path)._db_for_partition(0)[b"lead-1"] == b'{"name": "two"}'
    # A first start: nothing there yet, nothing to do.
    assert restore_writes_in_flight(tmp_path / "none") == 0


def test_the_persisted_offset_stops_where_another_writer_came_in_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaos seed 916: a worker frozen past its session woke and its buffered
    writes were acknowledged after the new owner's records; Faust persisted their
    offset, and the next start read on from there without the new owner's 200 leads."""
    table, store = things(tmp_path, planted=False)
    _writing(monkeypatch, 0)
    changelog = TP("things-changelog", 0)
    for offset in range(3):  # this worker's own records, 0-2
        table.table.data[b"lead-1"] = b'{"name": "mine"}'
        store.on_changelog_acked(changelog, offset, b"lead-1", WRITTEN)
    assert store.persisted_offset(changelog) == 2
    # Frozen; the new owner wrote 3-9; woken, this worker's buffered write lands at 10.
    table.table.data[b"lead-2"] = b'{"name": "late"}'
    store.on_changelog_acked(changelog, 10, b"lead-2", WRITTEN)
    store.on_changelog_acked(changelog, 11, b"lead-2", WRITTEN)
    assert store.persisted_offset(changelog) == 2  # a start reads 3 onwards again
    assert BEFORE + b"lead-2" not in store._db_for_partition(0)  # acknowledged: nothing to undo
