"""The consumer never commits past a record no stream handled.

These drive the real consumer of `services.runtime.consumer.App` (its fetch loop,
acknowledgements and commit arithmetic) with scripted fetches instead of a broker,
so the sequences that lost records under chaos replay exactly:

- run 1: after a restart the partition is sought to its committed offset 19, but
  record 19 was handed over before the seek finished and dropped with the stream
  queue; 20 onwards were handled. Faust committed 22: record 19 was never handled.
- run 2: a batch fetched before the seek (240 onwards) arrives after the seek to
  212. Faust took the jump for a gap, counted 213-239 as done and, one off, 212
  too; it committed past 28 records nobody handled.
"""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP, Message

from services.runtime import consumer as consumer_module
from services.runtime.consumer import App, handled_through

TOPIC = "deal.closed"
TP0 = TP(TOPIC, 0)

Step = list[int] | Callable[[], Any]


class Harness:
    """One stream partition of a real consumer, fed by a script of fetched batches
    and of what happens between them (a seek, a queue cleared)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, committed: int, log_start: int = 0) -> None:
        self.app = App(f"offsets-{random.random()}", broker="kafka://127.0.0.1:1")
        monkeypatch.setattr(self.app.topics, "acks_enabled_for", lambda topic: topic == TOPIC)
        self.queue: list[Message] = []  # the agent's queue: handed over, not yet handled
        self.handled: set[int] = set()
        self.fetch_from: list[int] = []  # where the consumer sought the fetcher to
        self.committed = committed
        self.start = committed
        self.consumer: Any = self.app.transport.create_consumer(
            callback=self._hand_over, on_partitions_revoked=_nothing, on_partitions_assigned=_nothing
        )
        consumer: Any = self.consumer
        monkeypatch.setattr(consumer, "assignment", lambda: {TP0})
        monkeypatch.setattr(consumer, "seek_to_committed", self._seek_to_committed)
        monkeypatch.setattr(consumer, "earliest_offsets", self._earliest(log_start))
        monkeypatch.setattr(consumer._thread, "seek_fetcher", self._seek_fetcher, raising=False)
        # The agent's queue, where the consumer looks for records still on their way.
        self.app.topics._tp_index[TP0] = {_Channel(self.queue)}  # type: ignore[attr-defined]
        self.app.flow_control.resume()  # the streams run, as after start-up

    async def _seek_fetcher(self, positions: dict[TP, int]) -> None:
        self.fetch_from.extend(positions.values())

    async def _hand_over(self, message: Message) -> None:
        self.queue.append(message)

    async def _seek_to_committed(self) -> dict[TP, int]:
        self.fetch_from.append(self.committed)
        return {TP0: self.committed}

    @staticmethod
    def _earliest(log_start: int) -> Callable[..., Any]:
        async def earliest(*tps: TP) -> dict[TP, int]:
            return dict.fromkeys(tps, log_start)

        return earliest

    async def seek_to_committed(self) -> None:
        await self.consumer.perform_seek()

    def clear_queue(self) -> None:
        """What Faust does to the stream queues when it resumes the flow."""
        self.queue.clear()
        self.app.flow_control.clear()

    def handle_queue(self) -> None:
        """The agent handles and acknowledges everything in its queue."""
        for message in self.queue:
            self.handled.add(message.offset)
            self.consumer.ack(message)
        self.queue.clear()

    async def run(self, *script: Step) -> None:
        """Fetch each batch of the script in turn (or run its action), then stop."""
        consumer = self.consumer

        async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109
            if not script_left:
                fetcher._stopped.set()
                return
            step = script_left.pop(0)
            if callable(step):
                result = step()
                if result is not None:
                    await result
                return
            for offset in step:
                yield TP0, _message(offset, self.app.consumer_generation_id)

        script_left = list(script)
        consumer.getmany = getmany
        fetcher = _Fetcher()
        await consumer._drain_messages(fetcher)
        # Seeks asked for outside the loop (a queue cleared) run as their own task.
        await asyncio.sleep(0)

    def commit(self) -> int:
        """The offset the consumer would commit now (or the one it has)."""
        offset = self.consumer._new_offset(TP0)
        if offset is not None:
            self.committed = offset
            self.consumer._committed_offset[TP0] = offset
        return self.committed

    def unhandled_below_commit(self) -> set[int]:
        return set(range(self.start, self.committed)) - self.handled


class _Channel:
    """What the conductor knows of an agent's channel: its queue of events."""

    def __init__(self, messages: list[Message]) -> None:
        self.queue = self
        self.messages = messages

    @property
    def _queue(self) -> list[Any]:
        return [SimpleNamespace(message=message) for message in self.messages]


class _Fetcher:
    def __init__(self) -> None:
        self._stopped = asyncio.Event()


async def _nothing(*_: Any) -> None:
    return None


def _message(offset: int, generation: int = 0) -> Message:
    key = f"lead-{offset}".encode()
    return Message(TOPIC, 0, offset, 0.0, 0, [], key, b"{}", None, tp=TP0, generation_id=generation)


async def test_run_1_a_record_dropped_with_the_queue_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    part = Harness(monkeypatch, committed=19)
    await part.run(
        part.seek_to_committed,
        [19],  # handed over...
        part.clear_queue,  # ...and dropped when Faust resumes the flow
        [20, 21],
        part.handle_queue,
    )
    # Nothing past the dropped record may be committed.
    assert part.commit() == 19
    assert part.unhandled_below_commit() == set()
    # The consumer sought back to 19; the broker sends 19-21 again.
    assert part.fetch_from[-1] == 19
    await part.run([19, 20, 21], part.handle_queue)
    assert part.commit() == 22
    assert part.handled == {19, 20, 21}


async def test_run_2_a_batch_fetched_before_the_seek_is_not_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    part = Harness(monkeypatch, committed=212)
    await part.run(
        part.seek_to_committed,
        [240, 241],  # fetched from where the fetcher was before the seek
        part.handle_queue,
    )
    assert part.commit() == 212
    assert part.unhandled_below_commit() == set()
    assert part.fetch_from[-1] == 212
    await part.run(list(range(212, 242)), part.handle_queue)
    assert part.commit() == 242
    assert part.handled == set(range(212, 242))


async def test_records_fetched_while_the_committed_offsets_are_looked_up_are_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust resumes the stream partitions before it seeks them; what the fetcher
    # returns meanwhile is dropped, so the seek must send it back to the start.
    part = Harness(monkeypatch, committed=3)
    await part.run([3, 4], part.seek_to_committed, part.handle_queue)
    assert part.commit() == 3
    assert part.fetch_from[-1] == 3
    await part.run([3, 4], part.handle_queue)
    assert part.commit() == 5
    assert part.handled == {3, 4}


async def test_a_record_overtaken_by_later_ones_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stream dropped 5 on its way (Faust skips records of a past consumer
    # generation) while 6 and 7 were handled: 5 must not hold the partition forever.
    clock = [1000.0]
    part = Harness(monkeypatch, committed=5)
    monkeypatch.setattr(part.consumer, "_now", lambda: clock[0])
    await part.run(part.seek_to_committed, [5, 6, 7])
    part.queue.pop(0)  # 5 vanishes before the agent gets it
    part.handle_queue()
    assert part.commit() == 5
    assert part.fetch_from[-1] == 5  # only the seek to the committed offset so far
    seeks = len(part.fetch_from)
    clock[0] += consumer_module.HOLE_GRACE_SECONDS
    assert part.commit() == 5
    await asyncio.sleep(0)
    assert len(part.fetch_from) == seeks + 1
    assert part.fetch_from[-1] == 5
    await part.run([5, 6, 7], part.handle_queue)
    assert part.commit() == 8
    assert part.handled == {5, 6, 7}


async def test_a_stale_record_skipped_by_the_stream_is_not_counted_as_handled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 5 and 6 were handed over, then a rebalance: Faust's stream skips the stale
    # copies it still finds queued, and acknowledges them all the same.
    part = Harness(monkeypatch, committed=5)
    await part.run(part.seek_to_committed, [5, 6])
    stale = list(part.queue)
    part.queue.clear()
    part.app.consumer_generation_id += 1
    await part.run(part.seek_to_committed, [5, 6])
    for message in stale:
        part.consumer.ack(message)
    assert part.commit() == 5
    part.handle_queue()
    assert part.commit() == 7


async def test_a_record_acknowledged_while_the_flow_is_stopped_is_not_counted_as_handled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stream skips (and acknowledges) what it dequeues while the flow is
    # suspended, in the same generation.
    part = Harness(monkeypatch, committed=5)
    await part.run(part.seek_to_committed, [5, 6])
    part.app.flow_control.suspend()
    part.consumer.ack(part.queue[0])
    part.app.flow_control.resume()
    assert part.commit() == 5
    part.handle_queue()
    assert part.commit() == 5  # 5 is not taken as handled: read again, it counts then
    await part.run([5], part.handle_queue)
    assert part.commit() == 7


async def test_acknowledgements_from_before_a_seek_do_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    part = Harness(monkeypatch, committed=5)
    await part.run(part.seek_to_committed, [5, 6, 7])
    part.consumer.ack(part.queue[2])  # 7 acknowledged, then the flow stops and seeks back
    part.queue.clear()
    await part.run(part.seek_to_committed, [5, 6])
    part.handle_queue()
    assert part.commit() == 7  # 7 is handled again before it counts
    await part.run([7], part.handle_queue)
    assert part.commit() == 8


async def test_the_last_record_handed_over_and_lost_on_the_way_is_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No later record comes to overtake it: the partition would stall for as long
    # as its topic is quiet.
    clock = [1000.0]
    part = Harness(monkeypatch, committed=5)
    monkeypatch.setattr(part.consumer, "_now", lambda: clock[0])

    async def watch() -> list[int]:
        part.consumer.read_again_what_vanished()
        for _ in range(3):
            await asyncio.sleep(0)
        return part.fetch_from

    await part.run(part.seek_to_committed, [5, 6, 7])
    assert await watch() == [5, 5]
    clock[0] += consumer_module.HOLE_GRACE_SECONDS
    assert await watch() == [5, 5]  # still queued: slow, not lost
    for message in part.queue[:2]:
        part.handled.add(message.offset)
        part.consumer.ack(message)
    part.queue.clear()  # 7 vanishes on its way
    assert part.commit() == 7
    assert await watch() == [5, 5]
    clock[0] += consumer_module.HOLE_GRACE_SECONDS - 1
    assert await watch() == [5, 5]
    clock[0] += 1
    assert await watch() == [5, 5, 7]
    await part.run([7], part.handle_queue)
    assert part.commit() == 8
    clock[0] += consumer_module.HOLE_GRACE_SECONDS
    assert await watch() == [5, 5, 7]  # all handled: nothing more to read


async def test_records_deleted_by_retention_do_not_stall_the_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The committed offset is older than the partition's first record: nothing
    # can be read there any more, so reading resumes at the first that exists.
    part = Harness(monkeypatch, committed=5, log_start=50)
    await part.run(part.seek_to_committed, [50, 51])
    assert part.fetch_from[-1] == 50
    await part.run([50, 51], part.handle_queue)
    assert part.commit() == 52


async def test_a_record_handed_over_twice_is_committed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    part = Harness(monkeypatch, committed=0)
    await part.run(part.seek_to_committed, [0, 1, 2], [1, 2, 3], part.handle_queue)
    assert sorted(part.handled) == [0, 1, 2, 3]
    assert part.commit() == 4


@pytest.mark.parametrize("seed", range(40))
async def test_no_commit_ever_passes_an_unhandled_record(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Seeded interleavings of what a fetcher and Faust's rebalances do to one
    partition: batches from anywhere (stale, repeated, ahead), seeks back to the
    committed offset, queues cleared, partial handling, commits. After every
    step, every offset below the committed one was handled."""
    rng = random.Random(seed)
    end = 60
    part = Harness(monkeypatch, committed=rng.randrange(0, 5))
    position = part.committed
    steps: list[Step] = [part.seek_to_committed]
    for _ in range(30):
        roll = rng.random()
        if roll < 0.5:
            # Mostly from where the consumer last sought, sometimes from anywhere.
            base = part.fetch_from[-1] if part.fetch_from and rng.random() < 0.7 else position
            base = min(max(base + rng.randrange(-3, 8), 0), end - 1)
            steps.append(list(range(base, min(base + rng.randrange(1, 8), end))))
            position = base
        elif roll < 0.6:
            steps.append(part.seek_to_committed)
        elif roll < 0.7:
            steps.append(part.clear_queue)
        else:
            steps.append(part.handle_queue)
        await part.run(*steps)
        steps = []
        part.commit()
        assert part.unhandled_below_commit() == set(), f"seed {seed}"
    # And it gets everywhere in the end: fetch from wherever it sought, handle all.
    for _ in range(end):
        if part.committed >= end:
            break
        base = part.fetch_from[-1] if part.fetch_from else part.committed
        await part.run(list(range(base, end)), part.handle_queue)
        part.commit()
        assert part.unhandled_below_commit() == set()
    assert part.committed == end


def test_the_handled_run_stops_at_the_first_hole() -> None:
    assert handled_through(19, [20, 21]) == 19
    assert handled_through(19, [19, 20, 22]) == 21
    assert handled_through(0, []) == 0
    assert handled_through(5, [1, 5, 5, 6]) == 7
