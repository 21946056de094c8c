"""Standby changelog records queued when a recovery ends are kept.

Faust resumes the flow once more after the standby partitions started reading,
right after the stream partitions were sought, and a resume clears every queue.
Nothing reads the dropped standby records again: the standby goes on from the
next one. Found by the chaos suite (seed 913): a restarted orders worker lost a
standby backlog of 122 orders that way and, taking the partition over later,
served 404 for them.
"""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from tests.unit.runtime.test_consumer_offsets import TP0, Harness

STANDBY = TP("leadflow-orders-orders-changelog", 1)
ACTIVE = TP("leadflow-orders-orders-changelog", 0)


def _event(tp: TP, offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


def _queued(harness: Harness) -> list[tuple[TP, int]]:
    queue: Any = harness.consumer.tables.changelog_queue
    return [(event.message.tp, event.message.offset) for event in queue._queue]


def _recovering(harness: Harness) -> None:
    """A worker whose recovery made partition 0 active here and 1 a standby."""
    recovery = harness.consumer.tables.recovery
    recovery.active_tps.add(ACTIVE)
    recovery.standby_tps.update({STANDBY, ACTIVE})  # Faust lists some actives as standbys too
    queue: Any = harness.consumer.tables.changelog_queue
    for offset in range(3):
        queue.put_nowait(_event(STANDBY, offset))
    queue.put_nowait(_event(ACTIVE, 7))


async def test_the_resume_ending_a_recovery_keeps_standby_records(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, committed=0)
    _recovering(harness)
    harness.app.flow_control.suspend()

    await harness.consumer.perform_seek()  # "Seek stream partitions to committed offsets."
    harness.app.flow_control.resume()

    assert _queued(harness) == [(STANDBY, 0), (STANDBY, 1), (STANDBY, 2)]
    assert harness.fetch_from == [0, 0]  # the stream partition, sought as before
    assert TP0 not in {tp for tp, _ in _queued(harness)}


async def test_any_other_resume_or_clear_drops_them_as_faust_does(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, committed=0)
    _recovering(harness)
    harness.app.flow_control.resume()  # the start of a recovery: standbys are sought after it
    assert _queued(harness) == []

    _recovering(harness)
    await harness.consumer.perform_seek()
    harness.app.flow_control.suspend()  # a rebalance began instead: it seeks everything again
    harness.app.flow_control.clear()
    assert _queued(harness) == []

    _recovering(harness)
    harness.app.flow_control.resume()  # the mark is for one resume only
    assert _queued(harness) == []


async def test_the_end_of_a_recovery_reads_each_standby_again_from_what_it_took(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seeds 920 and 921: a restarted worker's standby backlog never reached the
    recovery, and later records did. Read again from the last record the recovery
    took, the backlog comes back; what it took already is skipped by Faust."""
    harness = Harness(monkeypatch, committed=0)
    _recovering(harness)
    recovery = harness.consumer.tables.recovery
    recovery.standby_offsets[STANDBY] = 161
    harness.app.flow_control.suspend()
    await harness.consumer.perform_seek()
    harness.fetch_from.clear()

    harness.app.flow_control.resume()
    await asyncio.sleep(0)
    assert harness.fetch_from == [161]  # the standby only, not the active partition
    assert harness.consumer._read_offset[STANDBY] == 161

    harness.fetch_from.clear()
    harness.app.flow_control.resume()  # any other resume: nothing read again
    await asyncio.sleep(0)
    assert harness.fetch_from == []
