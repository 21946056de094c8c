"""Faust's Kafka consumer with one fix: a partition nobody has committed an offset
for yet is read from its start once recovery is over.

After a rebalance Faust resumes the stream partitions, then seeks them to their
committed offsets. aiokafka only seeks partitions that have a committed offset
above zero; the others stay wherever fetching got to in between, and the records
fetched meanwhile were dropped with the paused stream queues. On a new consumer
group (a first deployment, workers starting together) that silently skips
records. Seeking such partitions to their beginning honours
`auto_offset_reset=earliest`; handlers are idempotent, so records read twice do
no harm.
"""

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from faust.types import TP


class _FromTheStartThread(AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        fresh = uncommitted_stream_partitions(
            committed,
            changelogs=self.app.tables.changelog_topics,
            reset=self.app.conf.consumer_auto_offset_reset,
        )
        if fresh:
            await self.seek_to_beginning(*fresh)
        return committed


def uncommitted_stream_partitions(
    committed: Mapping[Any, int | None], *, changelogs: set[str], reset: str
) -> list[Any]:
    """Partitions of streams (not table changelogs) without a committed offset."""
    if reset != "earliest":
        return []
    return [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]


class _Consumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _FromTheStartThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(Transport):
    Consumer = _Consumer


class App(faust.App):
    """faust.App whose consumer reads never-committed partitions from the start."""

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
