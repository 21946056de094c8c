"""A fence on table changelogs against writes a frozen worker sends late.

A worker frozen past its session (a stalled VM, a long GC pause, SIGSTOP) is
dropped from the group and its partitions go to another worker, which handles
their records again and writes their tables anew. When the frozen worker wakes,
its producer still sends what it had buffered before it froze: table writes
that land on the changelog *after* the new owner's. Replayed in offset order,
by a standby or a worker recovering its tables, the stale value then wins. The
chaos suite found it (seed 914): a lead written `won` by its new owner read
`qualified` after a restart, from a record created 11 s before the `won` one
and appended after it.

So every changelog record says which consumer generation wrote it (a header),
and a replay keeps, per partition, the newest generation it applied and when
that was written. A record of an older generation created before that is a
late write from a past owner, and is skipped. A live worker never writes one:
it finishes and flushes what it produced before it hands a partition over.
Generations only ever grow, unless the group is deleted and made anew; then the
record is newer than the fence and is taken, and the fence starts again from it.
"""

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import EventT, FutureMessage

# The header of every table changelog record: the writer's consumer generation.
GENERATION_HEADER = "leadflow-generation"


@dataclass(frozen=True)
class Fence:
    """The newest writer a changelog partition has seen: its generation, and the
    latest time (Kafka timestamp, ms) a record of it was written."""

    generation: int = -1
    written_ms: int = 0

    def admits(self, generation: int | None, written_ms: int) -> bool:
        """Whether a record by `generation`, written at `written_ms`, is to be applied."""
        return generation is None or generation >= self.generation or written_ms >= self.written_ms

    def after(self, generation: int | None, written_ms: int) -> "Fence":
        """The fence once an admitted record is applied."""
        if generation is None:
            return self  # written before records carried their generation
        if generation >= self.generation:
            return Fence(generation, max(written_ms, self.written_ms))
        return Fence(generation, written_ms)  # the group began again

    def encode(self) -> str:
        return f"{self.generation}:{self.written_ms}"

    @classmethod
    def decode(cls, text: str) -> "Fence":
        generation, _, written_ms = text.partition(":")
        return cls(int(generation), int(written_ms))


def writer_generation(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> int | None:
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        if name == GENERATION_HEADER:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def admitted(fences: dict[int, Fence], batch: Iterable[EventT[Any]]) -> Iterator[EventT[Any]]:
    """The events of a changelog batch that pass their partition's fence, which
    moves on with each one (`fences` by partition, updated in place)."""
    for event in batch:
        message = event.message
        generation = writer_generation(message.headers)
        written_ms = round((message.timestamp or 0.0) * 1000)
        fence = fences.get(message.partition, Fence())
        if fence.admits(generation, written_ms):
            fences[message.partition] = fence.after(generation, written_ms)
            yield event


class FencedTable(faust.Table[Any, Any]):
    """Faust's table, whose changelog records carry the writer's generation; a
    store that tracks its writes in flight hears of each acknowledgement."""

    def _on_changelog_sent(self, fut: FutureMessage) -> None:
        acked = getattr(self.data, "on_changelog_acked", None)
        if acked is None or self.app.in_transaction:
            super()._on_changelog_sent(fut)
            return
        result, message = fut.result(), fut.message
        generation = writer_generation(message.headers)
        written = Fence(-1 if generation is None else generation, round((message.timestamp or 0.0) * 1000))
        acked(result.topic_partition, result.offset, message.key, written)

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> FutureMessage:
        return self.changelog_topic.send_soon(
            key=key,
            value=value,
            partition=partition,
            headers=[(GENERATION_HEADER, str(self.app.consumer_generation_id).encode())],
            # When the table was written: the producer would stamp the time it sends,
            # and a frozen worker sends what it buffered after it wakes.
            timestamp=time.time(),
            key_serializer=key_serializer or self.key_serializer,
            value_serializer=value_serializer or self.value_serializer,
            callback=self._on_changelog_sent,
            eager_partitioning=True,
        )
