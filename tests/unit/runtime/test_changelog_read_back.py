"""A changelog partition's records from the seek are applied, even when records
fetched before the seek were handed over first.

Chaos seed 920: a marketing worker restarting beside another sought each standby
partition to its persisted offset, but records of the partition's end, fetched
before that seek, reached the recovery first. Faust's rules then dropped every
record from the seek on as older than those: the standby never held the leads
the other worker had written meanwhile, and served 404 for them once it took
the partitions over.
"""

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP, Message

from tests.unit.runtime.test_consumer_offsets import Harness

CHANGELOG = "leadflow-marketing-leads-changelog"
STANDBY = TP(CHANGELOG, 3)


def _record(offset: int) -> Message:
    return Message(CHANGELOG, 3, offset, 0.0, 0, [], b"lead", b"{}", None, tp=STANDBY)


async def _hand_over(harness: Harness, offsets: list[int]) -> list[int]:
    """Hand `offsets` of the standby partition over in turn; what was delivered."""
    delivered: list[int] = []
    consumer: Any = harness.consumer

    async def deliver(message: Message) -> bool:
        delivered.append(message.offset)
        return True

    consumer._deliver = deliver
    for offset in offsets:
        await consumer.hand_over(STANDBY, _record(offset), consumer._read_offset)
    return delivered


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Harness:
    harness = Harness(monkeypatch, committed=0)
    consumer: Any = harness.consumer
    monkeypatch.setattr(consumer, "_is_changelog_tp", lambda tp: tp.topic == CHANGELOG)
    recovery = consumer.tables.recovery
    recovery.standby_tps.add(STANDBY)
    return harness


async def test_records_from_the_seek_are_read_after_later_ones_came_first(harness: Harness) -> None:
    consumer: Any = harness.consumer
    recovery = consumer.tables.recovery
    # Faust seeks the standby to its persisted offset 55 (on the consumer's thread)...
    thread: Any = consumer._thread
    await thread._seek_wait(SimpleNamespace(seek=lambda tp, offset: None, position=_position), {STANDBY: 55})
    recovery.standby_offsets[STANDBY] = 55
    # ...but 152 and 153, fetched before the seek, arrive first; then 55 onwards.
    assert await _hand_over(harness, [152, 153]) == [152, 153]
    recovery.standby_offsets[STANDBY] = 153  # what the recovery saw
    assert await _hand_over(harness, [55, 56, 57, 151, 152, 153]) == [55, 56, 57, 151, 152, 153]
    assert recovery.standby_offsets[STANDBY] == 54  # the recovery takes them again


async def test_records_from_before_the_seek_stay_dropped(harness: Harness) -> None:
    consumer: Any = harness.consumer
    consumer._sought[STANDBY] = 100
    assert await _hand_over(harness, [100, 101]) == [100, 101]
    # Stale records older than the seek (fetched at the old position) are not taken.
    assert await _hand_over(harness, [40, 41]) == []
    assert await _hand_over(harness, [102]) == [102]


async def _position(tp: TP) -> int:
    return 0
