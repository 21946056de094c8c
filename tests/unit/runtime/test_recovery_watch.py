"""A table recovery whose records stopped coming reads its partition again.

Seen twice in CI: a sales worker's active partitions got nothing for 90 s of
their recovery after a second worker joined, and the worker never served."""

import asyncio

import pytest
from faust.types import TP

from services.runtime.recovery_watch import RecoveryWatch
from tests.unit.runtime.test_consumer_offsets import Harness

ACTIVE = TP("leadflow-sales-deals-changelog", 3)
OTHER = TP("leadflow-sales-deals-changelog", 4)


def test_a_partition_is_stalled_once_its_recovery_has_not_moved_for_the_patience() -> None:
    watch = RecoveryWatch(patience=10)
    highwaters = {ACTIVE: 9, OTHER: 9}
    assert watch.stalled({ACTIVE: 3, OTHER: 3}, highwaters, set(), now=0) == []
    assert watch.stalled({ACTIVE: 3, OTHER: 5}, highwaters, set(), now=9) == []  # OTHER moved
    assert watch.stalled({ACTIVE: 3, OTHER: 5}, highwaters, set(), now=10) == [ACTIVE]
    # Read again: it gets the patience anew, and OTHER, still short of its records, its turn.
    assert watch.stalled({ACTIVE: 3, OTHER: 5}, highwaters, set(), now=19) == [OTHER]
    assert watch.stalled({ACTIVE: 3, OTHER: 5}, highwaters, set(), now=20) == [ACTIVE]


def test_a_partition_with_records_queued_or_caught_up_is_not_stalled() -> None:
    watch = RecoveryWatch(patience=10)
    assert watch.stalled({ACTIVE: 3}, {ACTIVE: 9}, set(), now=0) == []
    assert watch.stalled({ACTIVE: 3}, {ACTIVE: 9}, {ACTIVE}, now=30) == []  # slow, not stuck
    assert watch.stalled({ACTIVE: 3}, {ACTIVE: 9}, set(), now=39) == []
    assert watch.stalled({ACTIVE: 9}, {ACTIVE: 9}, set(), now=100) == []  # recovered
    assert watch.stalled({}, {ACTIVE: -1}, set(), now=200) == []  # an empty changelog
    watch.stalled({ACTIVE: 3}, {ACTIVE: 9}, set(), now=300)
    watch.forget()  # a new rebalance: its own recovery, its own clock
    assert watch.stalled({ACTIVE: 3}, {ACTIVE: 9}, set(), now=310) == []


def _recovering(harness: Harness) -> None:
    recovery = harness.consumer.tables.recovery
    recovery.in_recovery = True
    recovery.active_tps.add(ACTIVE)
    recovery.active_highwaters[ACTIVE] = 9
    recovery.active_offsets[ACTIVE] = 3
    harness.consumer._read_offset[ACTIVE] = 40  # wherever the fetcher got to
    harness.consumer.resume_flow()


async def test_the_consumer_reads_a_stalled_partition_again_from_where_its_recovery_stands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = Harness(monkeypatch, committed=0)
    _recovering(harness)
    consumer = harness.consumer
    harness.fetch_from.clear()

    consumer.read_again_what_recovery_waits_for(now=0)
    consumer.read_again_what_recovery_waits_for(now=9)
    await asyncio.sleep(0)
    assert harness.fetch_from == []

    consumer.read_again_what_recovery_waits_for(now=10)
    await asyncio.sleep(0)
    assert harness.fetch_from == [3]
    assert consumer._read_offset[ACTIVE] is None  # whatever comes is handed over
    assert consumer._sought[ACTIVE] == 3
    assert ACTIVE in consumer._get_active_partitions()  # it had been paused: fetched again


async def test_no_recovery_no_reading_again(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, committed=0)
    _recovering(harness)
    harness.consumer.tables.recovery.in_recovery = False
    harness.fetch_from.clear()
    for now in (0, 10, 20):
        harness.consumer.read_again_what_recovery_waits_for(now=now)
    await asyncio.sleep(0)
    assert harness.fetch_from == []
