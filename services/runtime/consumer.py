"""Faust's Kafka consumer, with offset tracking that never commits past a record
no stream handled.

Faust (faust-streaming 0.15) loses records on our topics. Two of its rules commit
an offset past a record that was fetched but never handed to a stream:

1. "Gaps". When a fetched offset is more than one past the last offset read, Faust
   records the range between as a gap and later counts it as acknowledged. That is
   right for compacted or transactional topics, where offsets really are missing,
   but ours are neither: a jump only means the fetcher was somewhere else.
2. An off-by-one. A committed offset names the *next* record to read, yet Faust
   commits as soon as the lowest acknowledged offset is committed + 1, so the
   record at the committed offset itself is skipped.

What feeds them is recovery after a rebalance: stream partitions are resumed, and
the fetcher already hands their records over, *before* they are sought to their
committed offsets; the agents' queues are cleared a moment later. Records handed
over in that window vanish with the queues, and a batch fetched before the seek
arrives after it as a jump. Both were seen under chaos: one record lost after a
worker restart (rule 2), and a block of 28 (rules 1 and 2).

So, for every partition of a stream (not table changelogs, which Faust reads
for recovery with its own rules):
- the read offset is the next offset to hand over, set when the partition is
  sought (its committed offset, or the start of the partition on a new group);
- a record is handed over only if it is exactly that offset; an earlier one was
  handed over already, a later one means records were skipped, so the partition
  is sought back and read again;
- when Faust clears the stream queues, the read offset goes back to the first
  record not yet acknowledged, so what was dropped is read again;
- the offset committed is the end of the unbroken run of acknowledged records
  that starts at the committed offset, and never goes past a hole;
- an acknowledgement counts only from the consumer generation that handed the
  record over, while the flow runs, and only after the partition was sought:
  Faust acknowledges the records its streams skip, and those were never handled;
- a record handed over that is neither queued nor being handled, and never came
  back acknowledged, is read again, so a partition never stalls on it.

Handlers are idempotent, so a record read twice does no harm; a record never
handled is the one thing that must not happen.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any, cast

import aiokafka
import faust
from faust.tables import TableManager
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from faust.types import TP, Message
from mode import Service
from mode.utils.queues import FlowControlEvent
from prometheus_client import Counter

from services.runtime.recovery_watch import RecoveryWatch

log = logging.getLogger(__name__)

# How long a record overtaken by later ones of its partition may stay unhandled
# before it is read again (a commit interval or two).
HOLE_GRACE_SECONDS = 5.0

REFETCHES = Counter(
    "leadflow_consumer_refetches",
    "Times a stream partition was read again because the fetcher skipped or dropped records.",
    ["topic"],
)
RETENTION_SKIPS = Counter(
    "leadflow_consumer_retention_skipped_records",
    "Records deleted by the topic's retention before this service handled them.",
    ["topic"],
)


def handled_through(start: int, acked: Iterable[int]) -> int:
    """The first offset at or after `start` that is not acknowledged: everything
    before it, from `start` on, has been handled."""
    end = start
    for offset in sorted(set(acked)):
        if offset < end:
            continue
        if offset > end:
            break
        end += 1
    return end


def uncommitted_stream_partitions(
    committed: Mapping[Any, int | None], *, changelogs: set[str], reset: str
) -> list[Any]:
    """Partitions of streams (not table changelogs) without a committed offset."""
    if reset != "earliest":
        return []
    return [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]


class _SeekingThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed fetch_max_wait_ms=1500; the consumer hands its own
        # value to the fetcher it creates on start (ServiceSettings.fetch_max_wait_ms).
        consumer._fetch_max_wait_ms = cast(App, self.app).fetch_max_wait_ms
        return consumer

    async def on_thread_stop(self) -> None:
        await super().on_thread_stop()  # the consumer stopped, after its last commit
        hand_over = cast(App, self.app).hand_over
        if hand_over is not None:
            await asyncio.to_thread(hand_over)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return cast(Mapping[TP, int], await self.call_thread(self._seek_to_committed))

    async def _seek_to_committed(self) -> dict[Any, int | None]:
        """Seek every assigned partition to its committed offset and return where
        each now starts. One request for all partitions: aiokafka asks for each in
        turn. Stream partitions without a committed offset start from the beginning
        (`auto_offset_reset=earliest`); aiokafka would leave them wherever fetching
        got to."""
        consumer = self._ensure_consumer()
        assigned = list(consumer.assignment())
        found = await consumer._coordinator.fetch_committed_offsets(assigned)
        starts: dict[Any, int | None] = {}
        for tp in assigned:
            offset = found[tp].offset if tp in found else -1
            starts[tp] = offset if offset >= 0 else None
            if offset > 0:
                consumer.seek(tp, offset)
        fresh = uncommitted_stream_partitions(
            starts,
            changelogs=self.app.tables.changelog_topics,
            reset=self.app.conf.consumer_auto_offset_reset,
        )
        if fresh:
            beginnings = await consumer.beginning_offsets(fresh)
            for tp, offset in beginnings.items():
                consumer.seek(tp, offset)
                starts[tp] = offset
        return starts

    async def _seek_wait(self, consumer: aiokafka.AIOKafkaConsumer, partitions: Mapping[TP, int]) -> None:
        # Faust seeks table changelogs here (recovery, standbys): remember where.
        sought = cast(_Consumer, self.consumer)._sought
        for tp, offset in partitions.items():
            sought[tp] = offset
        await super()._seek_wait(consumer, partitions)

    async def seek_fetcher(self, positions: Mapping[TP, int]) -> None:
        """Seek the fetcher on the consumer's own thread: aiokafka is not thread-safe
        (a seek from the worker's loop raced its fetcher into a KeyError)."""
        await self.call_thread(self._seek_fetcher, positions)

    async def _seek_fetcher(self, positions: Mapping[TP, int]) -> None:
        consumer = self._ensure_consumer()
        assigned = consumer.assignment()
        for tp, offset in positions.items():
            if tp in assigned:
                consumer.seek(tp, offset)


class _FlowControl(FlowControlEvent):
    """Faust's flow control, telling the consumer when it drops queued records, and
    keeping the standby changelog records that the end of a recovery dropped.

    Faust resumes the flow, which clears every queue, once more after it has
    started reading the standby partitions: when the stream partitions have been
    sought. Standby records queued by then were dropped, and nothing reads them
    again: the standby reads on from the next record, and its offset, persisted
    with the records that follow, passes them for good. The chaos suite found it
    (seed 913): a worker restarted with a standby's backlog of 122 orders queued
    dropped them all; when it later took that partition over, it trusted its
    database and served 404 for those orders. Faust issue #212 saw it too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consumer: _Consumer | None = None
        # Set by the seek that ends a recovery, for the resume that follows it.
        self.keep_standby_records = False
        # The stall gate: see `is_active`. `stall_limit` None: no gate (no group).
        self.stall_limit: float | None = None
        self.stall_hold = 0.0
        self._beat = time.monotonic()
        self._woke: float | None = None

    def suspend(self) -> None:
        self.keep_standby_records = False
        super().suspend()

    def resume(self) -> None:
        # A rebalance ended: the partitions held now are ours.
        self._woke, self._beat = None, time.monotonic()
        recovered = self.keep_standby_records
        try:
            super().resume()
        finally:
            self.keep_standby_records = False
        if recovered and self.consumer is not None:
            self.consumer.read_standbys_again()

    def beat(self) -> None:
        """Called often by the worker's loop; a long gap between two is a stall."""
        self._stalled(time.monotonic())
        self._beat = time.monotonic()

    def _stalled(self, now: float) -> bool:
        if self.stall_limit is not None and now - self._beat > self.stall_limit:
            self._woke, self._beat = now, now
        return self._woke is not None and now - self._woke < self.stall_hold

    def is_active(self) -> bool:
        """Faust's, but not just after the worker woke from a stall long enough to
        have cost it its place in the group (frozen, SIGSTOPped, starved of CPU).

        Its partitions may be another worker's by now, and what it handles would
        write stale values over the new owner's (the changelog fence only catches
        writes made before the stall). So streams skip their records until a
        rebalance ends, or, if none comes (the group kept the worker), for a few
        heartbeats; the records are read again."""
        return bool(super().is_active()) and not self._stalled(time.monotonic())

    def clear(self) -> None:
        consumer = self.consumer
        standbys = (
            consumer.standby_partitions() if consumer is not None and self.keep_standby_records else set()
        )
        changelogs = consumer.tables._changelog_queue if consumer is not None and standbys else None
        for queue in list(self._queues):
            if queue is changelogs:
                # Ordered per partition, and read from where the standby left off.
                records = cast(Any, queue)._queue
                kept = [event for event in records if event.message.tp in standbys]
                records.clear()
                records.extend(kept)
            else:
                queue.clear()
        if consumer is not None:
            consumer.read_again_what_was_dropped()


class _Consumer(Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bumped whenever read offsets move back, so a hand-over that was under way
        # meanwhile does not move them forward again.
        self._epoch = 0
        # Partitions sought back during the current batch: the rest of it, fetched
        # before the seek, is dropped quietly.
        self._rereading: dict[TP, int] = {}
        # Seeks for the fetcher's thread, and the task that does them.
        self._seeks: dict[TP, int] = {}
        self._seeking: asyncio.Future[None] | None = None
        self._streams: dict[str, bool] = {}
        # Per partition: the first unhandled offset that later ones overtook, and since when.
        self._holes: dict[TP, tuple[int, float]] = {}
        # Per partition: the first unhandled offset of those handed over, and since when.
        self._waiting: dict[TP, tuple[int, float]] = {}
        # Per changelog partition: where Faust last sought it (see `hand_over`).
        self._sought: dict[TP, int] = {}
        self._recovery_watch = RecoveryWatch()
        flow_control = self.app.flow_control
        if isinstance(flow_control, _FlowControl):
            flow_control.consumer = self
            # A stall this long may have outlasted the session (heartbeats every interval).
            conf = self.app.conf
            flow_control.stall_limit = conf.broker_session_timeout - conf.broker_heartbeat_interval
            flow_control.stall_hold = 2 * conf.broker_heartbeat_interval

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _SeekingThread(self, loop=self.loop, beacon=self.beacon)

    def _is_stream(self, tp: TP) -> bool:
        # Asked per record: the answer for a topic never changes once it is consumed.
        stream = self._streams.get(tp.topic)
        if stream is None:
            stream = self._streams[tp.topic] = self.app.topics.acks_enabled_for(
                tp.topic
            ) and not self._is_changelog_tp(tp)
        return stream

    # -- where each partition starts ------------------------------------------

    async def perform_seek(self) -> None:
        starts = await self.seek_to_committed()
        self._epoch += 1
        self._rereading.clear()
        for key, offset in starts.items():
            tp = TP(key.topic, key.partition)
            if self._is_changelog_tp(tp):
                # As Faust does: recovery reads changelogs with its own rules.
                self._read_offset[tp] = offset if offset is not None and offset >= 0 else None
                if offset:
                    self._committed_offset[tp] = offset
            elif offset is not None:
                self._read_offset[tp] = offset
                self._committed_offset[tp] = offset
                # Acknowledgements from before the seek are of records that will be
                # handed over again, or of stale ones Faust skipped: none count.
                self._forget_acks(tp)
                # Seek again: while the committed offsets were being fetched, the
                # fetcher went on and its records were dropped as not yet sought.
                self._seeks[tp] = offset
        await self._seek_pending()
        flow_control = self.app.flow_control
        if isinstance(flow_control, _FlowControl):
            # Faust resumes the flow next; standby partitions are not sought again.
            flow_control.keep_standby_records = True

    def read_standbys_again(self) -> None:
        """Read every standby partition again from the last record its recovery took.

        The records a standby partition fetched first, its backlog, went missing
        on the way to Faust's recovery while later ones arrived, and the standby's
        persisted offset passed them: seeds 913, 920 and 921 of the chaos suite,
        in every standby partition of a worker that had just restarted (a log
        line of the store shows it: a batch that starts past what the database
        held). Read again once the recovery has ended, the records it took are
        skipped and those it never got are applied."""
        recovery = self.tables.recovery
        for tp in self.standby_partitions():
            taken = recovery.standby_offsets.get(tp)
            offset = 0 if taken is None or taken < 0 else taken
            self._sought[tp] = offset
            self._read_offset[tp] = offset
            self._fetch_from(tp, offset)

    @property
    def tables(self) -> TableManager:
        return cast(TableManager, self.app.tables)

    def standby_partitions(self) -> set[TP]:
        """Changelog partitions read only to keep a standby up to date."""
        recovery = self.tables.recovery
        return set(recovery.standby_tps) - set(recovery.active_tps)

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        tp = TP(partition.topic, partition.partition)
        if self._is_stream(tp):
            # Faust forgets the position of a seek to 0; a stream partition keeps it.
            self._read_offset[tp] = offset
            self._epoch += 1

    def _forget_acks(self, tp: TP) -> None:
        self._acked.pop(tp, None)
        self._acked_index.pop(tp, None)
        self._holes.pop(tp, None)
        self._waiting.pop(tp, None)

    def read_again_what_was_dropped(self) -> None:
        """Queued records were dropped: read each stream partition again from its
        first record not yet acknowledged."""
        try:
            assigned = self.assignment()
        except Exception:  # noqa: BLE001 - not started or closing: nothing to read again
            return
        for tp, position in list(self._read_offset.items()):
            start = self._committed_offset[tp]
            if position is None or start is None or tp not in assigned or not self._is_stream(tp):
                continue
            first_unhandled = handled_through(start, self._acked[tp])
            if first_unhandled < position:
                self._read_from(tp, first_unhandled)

    def _read_from(self, tp: TP, offset: int) -> None:
        self._epoch += 1
        self._read_offset[tp] = offset
        self._rereading[tp] = offset
        self._fetch_from(tp, offset)
        REFETCHES.labels(topic=tp.topic).inc()

    def _fetch_from(self, tp: TP, offset: int) -> None:
        """Have the fetcher read `tp` from `offset`, as soon as its thread can."""
        self._seeks[tp] = offset
        if self._seeking is None or self._seeking.done():
            self._seeking = asyncio.ensure_future(self._seek_pending())

    async def _seek_pending(self) -> None:
        thread = cast(_SeekingThread, cast(Any, self)._thread)
        while self._seeks:
            seeks, self._seeks = self._seeks, {}
            try:
                await thread.seek_fetcher(seeks)
            except Exception:  # a rebalance or shutdown sets new positions anyway
                log.warning("seek failed", exc_info=True, extra={"partitions": len(seeks)})

    async def _skipped(self, tp: TP, expected: int, found: int) -> None:
        """A stream partition's fetch jumped from `expected` to `found`."""
        if self._rereading.get(tp) == expected or tp not in self.assignment():
            return
        earliest = (await self.earliest_offsets(tp)).get(tp)
        if earliest is not None and earliest > expected:
            # Deleted by retention before we got to them: nothing left to read.
            log.error(
                "records deleted before they were handled",
                extra={"topic": tp.topic, "partition": tp.partition, "from": expected, "to": earliest},
            )
            RETENTION_SKIPS.labels(topic=tp.topic).inc(earliest - expected)
            self._committed_offset[tp] = earliest
            self._read_from(tp, earliest)
            await self._seek_pending()
            return
        log.warning(
            "fetched past records not handed over; reading them again",
            extra={"topic": tp.topic, "partition": tp.partition, "expected": expected, "fetched": found},
        )
        self._read_from(tp, expected)
        await self._seek_pending()

    # -- what may be committed ------------------------------------------------

    def ack(self, message: Message) -> bool:
        stale = message.generation_id != self.app.consumer_generation_id
        if (stale or not self.app.flow_control.is_active()) and self._is_stream(message.tp):
            # Handed over before the last rebalance, or acknowledged while the flow
            # is stopped: Faust's stream skips such a record yet acknowledges it.
            # It is read again from the committed offset; a handler that did finish
            # it only means it is handled twice, which handlers allow.
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        return bool(super().ack(message))

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        start = self._committed_offset[tp]
        if not acked or start is None:
            return None
        end = handled_through(start, acked)
        self._watch_for_holes(tp, end, acked)
        if end == start:
            return None  # the record at the committed offset is not handled yet
        handled = range(start, end)
        acked[:] = [offset for offset in acked if offset >= end]
        self._acked_index[tp].difference_update(handled)
        return end

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _watch_for_holes(self, tp: TP, first_unhandled: int, acked: list[int]) -> None:
        """Read again a record that later records of its partition overtook.

        A partition's records pass its stream in order, so once a later one is
        acknowledged, an earlier one that is not was dropped on the way (Faust's
        stream skips records of a past consumer generation, for one). Left alone it
        would hold the partition's commits forever; read again, it is handled. The
        grace period lets a record already being read again arrive first."""
        behind = any(offset > first_unhandled for offset in acked)
        seen = self._holes.get(tp)
        if not behind or (seen is not None and seen[0] != first_unhandled):
            self._holes.pop(tp, None)
        if not behind:
            return
        now = self._now()
        if tp not in self._holes:
            self._holes[tp] = (first_unhandled, now)
        elif now - self._holes[tp][1] >= HOLE_GRACE_SECONDS:
            log.warning(
                "record overtaken by later ones; reading it again",
                extra={"topic": tp.topic, "partition": tp.partition, "offset": first_unhandled},
            )
            self._holes[tp] = (first_unhandled, now)
            self._read_from(tp, first_unhandled)

    @Service.timer(1.0)
    async def _watch_handed_over(self) -> None:
        self.read_again_what_vanished()

    @Service.timer(0.5)
    async def _beat(self) -> None:
        flow_control = self.app.flow_control
        if isinstance(flow_control, _FlowControl):
            flow_control.beat()

    @Service.timer(1.0)
    async def _watch_recovery(self) -> None:
        self.read_again_what_recovery_waits_for(self._now())

    def read_again_what_recovery_waits_for(self, now: float) -> None:
        """Read an active changelog partition again from where its recovery stands
        when the records it waits for stopped coming (recovery_watch.py)."""
        recovery = self.tables.recovery
        if not recovery.in_recovery or not self.flow_active:
            self._recovery_watch.forget()  # nothing to wait for, or a rebalance seeks anew
            return
        highwaters = {
            tp: last
            for tp, last in recovery.active_highwaters.items()
            if tp in recovery.active_tps and last is not None
        }
        offsets = {tp: offset for tp, offset in recovery.active_offsets.items() if offset is not None}
        queue = cast(Any, self.tables._changelog_queue)
        queued = {event.message.tp for event in list(queue._queue)} if queue is not None else set()
        fetching = self._get_active_partitions()
        for tp in self._recovery_watch.stalled(offsets, highwaters, queued, now):
            offset = max(offsets.get(tp, -1), 0)  # where Faust's recovery seeks it too
            log.warning(
                "table recovery got no record of a partition for %.0f s; reading it again",
                self._recovery_watch.patience,
                extra={
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": offset,
                    "highwater": highwaters[tp],
                    "paused": tp not in fetching,
                    "read_offset": self._read_offset.get(tp),
                    "sought": self._sought.get(tp),
                },
            )
            if tp not in fetching:
                self.resume_partitions({tp})
            self._sought[tp] = offset
            self._read_offset[tp] = None
            self._fetch_from(tp, offset)
            REFETCHES.labels(topic=tp.topic).inc()

    def read_again_what_vanished(self) -> None:
        """Read again a record that was handed over but vanished on the way.

        The last records of a partition have no later ones to overtake them, so
        the hole watch above never sees one of them go missing (a queue cleared
        outside a rebalance, a stale copy skipped). Once the first unhandled one
        has waited the grace period and no record of its partition is queued or
        being handled, it is gone: read from there again."""
        if self.app.rebalancing or not self.app.flow_control.is_active():
            return  # the seek that ends a rebalance sets every position anyway
        try:
            assigned = self.assignment()
        except Exception:  # noqa: BLE001 - not started or closing: nothing to read again
            return
        now = self._now()
        for tp, position in list(self._read_offset.items()):
            start = self._committed_offset[tp]
            if position is None or start is None or tp not in assigned or not self._is_stream(tp):
                continue
            first_unhandled = handled_through(start, self._acked[tp])
            seen = self._waiting.get(tp)
            if first_unhandled >= position:
                self._waiting.pop(tp, None)
            elif seen is None or seen[0] != first_unhandled:
                self._waiting[tp] = (first_unhandled, now)
            elif now - seen[1] >= HOLE_GRACE_SECONDS and not self._in_flight(tp):
                log.warning(
                    "record handed over never handled; reading it again",
                    extra={"topic": tp.topic, "partition": tp.partition, "offset": first_unhandled},
                )
                self._waiting[tp] = (first_unhandled, now)
                self._read_from(tp, first_unhandled)

    def _in_flight(self, tp: TP) -> bool:
        """Whether a record of `tp` is in a stream's queue or being handled."""
        if any(message.tp == tp and not message.acked for message in list(self._unacked_messages)):
            return True
        channels = cast(Any, self.app.topics)._tp_index.get(tp, ())
        return any(event.message.tp == tp for channel in channels for event in list(channel.queue._queue))

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Our topics have no gaps (see the module docstring); a jump is handled by
        # reading again, never by counting the missing records as done.
        return None

    # -- handing records over -------------------------------------------------

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop, with stream records handed over strictly in order."""
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    break
                handed = 0
                async for tp, message in records:
                    handed += 1
                    if not handed % 100:
                        await asyncio.sleep(0)
                    await self.hand_over(tp, message, read_offset)
                self._rereading.clear()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def hand_over(self, tp: TP, message: Any, read_offset: Any) -> None:
        """Give one fetched record to the streams, or drop it if it is not the next."""
        offset = message.offset
        if not self._is_stream(tp):
            # Changelogs and non-acking topics: Faust's own rule, but see `_read_back`.
            last = read_offset[tp]
            if last is not None and offset < last and offset >= self._sought.get(tp, last):
                self._read_back(tp, offset)
                last = None
            if last is None or offset >= last:
                await self._deliver(message)
                read_offset[tp] = offset
            return
        expected = read_offset[tp]
        if expected is None or offset < expected:
            return  # not sought yet (it will be), or handed over already
        if offset > expected:
            await self._skipped(tp, expected, offset)
            return
        self._rereading.pop(tp, None)
        epoch = self._epoch
        if await self._deliver(message) and self._epoch == epoch:
            read_offset[tp] = offset + 1

    def _read_back(self, tp: TP, offset: int) -> None:
        """A changelog record from where Faust last sought its partition came after
        later ones: those were fetched before the seek and handed over first.

        Faust's rule (and its recovery's) drops a record older than the last one
        read, so the whole stretch from the seek to the records fetched before it
        was never applied, and the standby's persisted offset passed it. The chaos
        suite found it (seed 920): a marketing worker restarted beside another
        lost, in each of its three standby partitions, every lead the other had
        written since the restart began, and took those partitions over later.
        So the partition is read again from here: the recovery takes it from this
        offset on, and the stores apply each batch in offset order."""
        if not self._is_changelog_tp(tp):
            return
        recovery = self.tables.recovery
        for offsets in (recovery.standby_offsets, recovery.active_offsets):
            seen = offsets.get(tp)
            if seen is not None and seen >= offset:
                offsets[tp] = offset - 1
        # Expected after `read_standbys_again`, which seeks standbys back on purpose.
        log.info(
            "changelog partition read again from its seek",
            extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
        )
        REFETCHES.labels(topic=tp.topic).inc()

    async def _deliver(self, message: Any) -> bool:
        """Run the callback unless the flow is suspended first; True if it ran."""
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        delivery = self.callback(message)
        outcome = await self.wait_first(delivery, self.suspend_flow.wait())
        return delivery in outcome.done


class _Transport(Transport):
    Consumer = _Consumer


class App(faust.App):
    """faust.App whose consumer never commits past a record no stream handled."""

    # Called once the consumer has stopped for good, after its last commit, to hand
    # this worker's partitions to the others (membership.py); None: nothing to do.
    hand_over: Callable[[], object] | None = None
    # Options for the store of every table made on this app (ServiceSettings.table_options).
    table_options: Mapping[str, Any] = {}
    # How long the broker may hold a fetch that finds nothing (ServiceSettings.fetch_max_wait_ms).
    fetch_max_wait_ms: int = 1500

    async def on_stop(self) -> None:
        await super().on_stop()  # streams drained and acknowledged, tables closed, producer flushed
        # Faust stops the consumer last, after the HTTP server's graceful wait and the
        # agents. Stopped now, with its last commit, it hands this worker's partitions
        # over (membership.py) a second or more sooner; its own turn then does nothing.
        if self._consumer is not None and self._consumer.started:
            await self._consumer.stop()

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        # Ours also tells the consumer when the stream queues are cleared.
        return _FlowControl(loop=self.loop)
