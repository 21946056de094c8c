"""Our RocksDB store: Faust's, without a full garbage collection per table on every rebalance."""

import gc
from pathlib import Path
from typing import Any

import pytest
from faust import App
from faust.types import TP
from pydantic import BaseModel

from services.runtime.rocksdb_store import (
    STOPPED_CLEANLY,
    RocksDBStore,
    discard_unless_stopped_cleanly,
    faust_store,
    mark_stopped_cleanly,
)
from services.runtime.service import ServiceRuntime
from services.runtime.settings import ServiceSettings
from services.runtime.tables import ModelTable


class Thing(BaseModel):
    name: str


def things(tmp_path: Path) -> tuple[ModelTable[Thing], Any]:
    """A table on our store, with one value in partition 0; and its store."""
    app = App(f"test-rocksdb-store-{tmp_path.name}", store=faust_store("rocksdb://"), datadir=str(tmp_path))
    table = ModelTable(app, "things", Thing, help="things")
    store = table.table.data
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


def _databases(tabledir: Path) -> list[str]:
    for name in ("orders-0.db", "orders-3.db"):
        (tabledir / name).mkdir(parents=True)
        (tabledir / name / "000004.log").write_bytes(b"a write the changelog may not hold")
    return sorted(path.name for path in tabledir.glob("*.db"))


def test_after_a_stop_that_was_not_clean_the_databases_are_rebuilt(tmp_path: Path) -> None:
    tabledir = tmp_path / "v1" / "tables"
    assert _databases(tabledir) == ["orders-0.db", "orders-3.db"]
    (tabledir / "orders-backups").mkdir()
    removed = discard_unless_stopped_cleanly(tabledir)
    assert [path.name for path in removed] == ["orders-0.db", "orders-3.db"]
    assert [path.name for path in tabledir.iterdir()] == ["orders-backups"]
    # A first start: nothing there yet, nothing to do.
    assert discard_unless_stopped_cleanly(tmp_path / "none") == []


def test_after_a_clean_stop_the_databases_are_kept_once(tmp_path: Path) -> None:
    tabledir = tmp_path / "tables"
    kept = _databases(tabledir)
    mark_stopped_cleanly(tabledir)
    assert discard_unless_stopped_cleanly(tabledir) == []
    assert sorted(path.name for path in tabledir.glob("*.db")) == kept
    # The mark is used up: if this worker now crashes, the next start rebuilds.
    assert not (tabledir / STOPPED_CLEANLY).exists()
    assert len(discard_unless_stopped_cleanly(tabledir)) == 2
