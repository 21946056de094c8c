"""A changelog replay skips the late writes of a past owner (changelog_fence.py).

Seed 914 of the chaos suite, in records: marketing-0 wrote a lead `qualified`
in generation 5 and froze; marketing-1 took the partition in generation 6 and
wrote it `qualified`, then `won`; marketing-0 woke and its producer sent the
buffered `qualified`, created 11 s before the `won` and appended after it. A
replay ended on `qualified`.
"""

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust import App
from faust.types import TP

from services.runtime.changelog_fence import GENERATION_HEADER, Fence, admitted, writer_generation
from services.runtime.memory_store import MemoryStore
from services.runtime.rocksdb_store import RocksDBStore, faust_store
from services.runtime.service import ServiceRuntime
from services.runtime.settings import ServiceSettings

CHANGELOG = "leadflow-marketing-leads-changelog"
LEAD = b"lead-1"


def _record(offset: int, generation: int | None, at_s: float, value: bytes | None, key: bytes = LEAD) -> Any:
    headers = [] if generation is None else [(GENERATION_HEADER, str(generation).encode())]
    message = SimpleNamespace(
        topic=CHANGELOG,
        partition=5,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp=at_s,
        tp=TP(CHANGELOG, 5),
    )
    return SimpleNamespace(message=message, key=key, value=value)


# The records of partition 5 for the lead, in offset order, as the run left them.
SEED_914 = [
    _record(320, 6, 35.04, b"qualified"),
    _record(503, 6, 41.45, b"won"),
    _record(504, 6, 41.47, b"won+ordered"),
    _record(523, 5, 24.27, b"qualified (late)"),
]


def test_a_late_write_of_an_older_generation_is_refused() -> None:
    fence = Fence()
    assert fence.admits(5, 24_270)
    fence = fence.after(6, 41_470)
    assert not fence.admits(5, 24_270)  # the frozen worker's record
    assert fence.admits(6, 41_000)  # the owner's own, however its clock went
    assert fence.admits(7, 1_000)  # a later owner
    assert fence.admits(None, 1_000)  # written before records said their generation


def test_a_group_made_anew_starts_the_fence_again() -> None:
    fence = Fence(40, 1_000_000).after(1, 2_000_000)  # generation 1 again, written later
    assert fence == Fence(1, 2_000_000)
    assert fence.admits(1, 2_000_001)
    assert not fence.admits(0, 1_999_999)


def test_the_fence_only_moves_forward_in_time_within_a_generation() -> None:
    assert Fence(6, 41_470).after(6, 41_000) == Fence(6, 41_470)
    assert Fence.decode(Fence(6, 41_470).encode()) == Fence(6, 41_470)


def test_the_writer_generation_is_read_from_the_header() -> None:
    assert writer_generation([("content-type", b"x"), (GENERATION_HEADER, b"12")]) == 12
    assert writer_generation({GENERATION_HEADER: b"3"}) == 3
    assert writer_generation([(GENERATION_HEADER, b"twelve")]) is None
    assert writer_generation(None) is None


def test_seed_914_replayed_keeps_the_won_lead() -> None:
    fences: dict[int, Fence] = {}
    kept = [event.message.offset for event in admitted(fences, SEED_914)]
    assert kept == [320, 503, 504]
    assert fences[5] == Fence(6, 41_470)


def test_the_memory_store_replays_seed_914_to_won_and_starts_again_from_the_top() -> None:
    store = _memory("fence-memory")
    store.apply_changelog_batch(SEED_914, to_key=lambda key: key, to_value=lambda value: value)
    assert store[LEAD] == b"won+ordered"

    # A recovery reads the partition again from its start: the fence starts over.
    again = [_record(0, 2, 1.0, b"captured"), _record(1, 2, 2.0, b"qualified")]
    store.apply_changelog_batch(again, to_key=lambda key: key, to_value=lambda value: value)
    assert store[LEAD] == b"qualified"


def _memory(name: str) -> Any:
    table: Any = SimpleNamespace(name="leads")
    return MemoryStore(url="leadflow-memory://", app=App(name), table=table)


def _rocksdb(tmp_path: Path) -> Any:
    app = App(f"fence-rocksdb-{tmp_path.name}", store=faust_store("rocksdb://"), datadir=str(tmp_path))
    return RocksDBStore(url="leadflow-rocksdb://", app=app, table=SimpleNamespace(name="leads"))


def test_rocksdb_replays_seed_914_to_won_and_keeps_its_fence_with_the_offset(tmp_path: Path) -> None:
    store = _rocksdb(tmp_path)
    store.apply_changelog_batch(SEED_914[:3], to_key=lambda key: key, to_value=lambda value: value)
    tp = TP(CHANGELOG, 5)
    assert store.persisted_offset(tp) == 504

    # The databases are opened anew, as after a restart: the fence was kept.
    store._dbs.clear()
    reopened = _rocksdb(tmp_path)
    reopened.apply_changelog_batch(SEED_914[3:], to_key=lambda key: key, to_value=lambda value: value)
    assert reopened._db_for_partition(5)[LEAD] == b"won+ordered"
    assert reopened.persisted_offset(tp) == 523  # read, though not applied


def test_rocksdb_fences_its_own_acknowledged_writes(tmp_path: Path) -> None:
    store = _rocksdb(tmp_path)
    store.apply_changelog_batch(SEED_914[:1], to_key=lambda key: key, to_value=lambda value: value)
    # This worker, the owner in generation 6, wrote the lead; its record came back acknowledged.
    store.on_changelog_acked(TP(CHANGELOG, 5), 321, LEAD, Fence(6, 41_470))
    assert store._read_offset_key(5) == (321, Fence(6, 41_470))
    # A standby's later replay continues from there: the late write is refused.
    store.apply_changelog_batch(SEED_914[3:], to_key=lambda key: key, to_value=lambda value: value)
    assert store._db_for_partition(5)[LEAD] == b"qualified"
    assert store.persisted_offset(TP(CHANGELOG, 5)) == 523


def test_offsets_persisted_by_faust_itself_still_read(tmp_path: Path) -> None:
    store = _rocksdb(tmp_path)
    store._db_for_partition(1).put(store.offset_key, b"77")
    assert store.persisted_offset(TP(CHANGELOG, 1)) == 77


def test_every_table_of_a_worker_stamps_its_generation(tmp_path: Path) -> None:
    settings = ServiceSettings(service="orders", web_port=8009, data_dir=tmp_path)
    runtime = ServiceRuntime(settings, title="orders", description="")
    table = runtime.app.Table("things", key_type=bytes, value_type=bytes)
    assert type(table).__name__ == "FencedTable"
    assert isinstance(table.data, MemoryStore)


def test_a_changelog_record_carries_its_writer_and_the_time_of_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stamped when the table is written: the producer would stamp the time it
    sends, and a frozen worker sends what it buffered only after it wakes."""
    settings = ServiceSettings(service="orders", web_port=8009, data_dir=tmp_path)
    runtime = ServiceRuntime(settings, title="orders", description="")
    table = runtime.app.Table("things", key_type=bytes, value_type=bytes)
    runtime.app.consumer_generation_id = 9
    sent: dict[str, Any] = {}
    monkeypatch.setattr(table.changelog_topic, "send_soon", lambda **kwargs: sent.update(kwargs))
    monkeypatch.setattr("time.time", lambda: 1234.5)
    table.send_changelog(3, b"lead-1", b"{}")
    assert sent["headers"] == [(GENERATION_HEADER, b"9")]
    assert sent["timestamp"] == 1234.5
    assert sent["partition"] == 3


def test_a_batch_applies_in_offset_order(tmp_path: Path) -> None:
    """The end of a partition may reach a store before the records from its seek
    (services.runtime.consumer._Consumer._read_back): the newest value must win."""
    late_first = [_record(152, 6, 41.5, b"won"), _record(100, 6, 36.0, b"qualified")]
    memory = _memory("fence-order")
    memory.apply_changelog_batch(late_first, to_key=lambda key: key, to_value=lambda value: value)
    assert memory[LEAD] == b"won"
    rocksdb = _rocksdb(tmp_path)
    rocksdb.apply_changelog_batch(late_first, to_key=lambda key: key, to_value=lambda value: value)
    assert rocksdb._db_for_partition(5)[LEAD] == b"won"
    assert rocksdb.persisted_offset(TP(CHANGELOG, 5)) == 152


def test_a_batch_that_starts_past_what_the_database_held_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The chaos suite's sign of records lost on their way to a store (seeds 920, 921)."""
    store = _rocksdb(tmp_path)
    apply = store.apply_changelog_batch
    caplog.set_level("INFO")
    apply(SEED_914[:1], to_key=lambda key: key, to_value=lambda value: value)  # held through 320
    apply([_record(321, 6, 36.0, b"qualified")], to_key=lambda key: key, to_value=lambda value: value)
    assert "database held through" not in caplog.text
    apply(SEED_914[1:2], to_key=lambda key: key, to_value=lambda value: value)  # 503: 322-502 missing
    assert "changelog batch for partition 5 starts at 503; the database held through 321" in caplog.text
