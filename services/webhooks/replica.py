"""Every subscription on every worker: a copy kept by reading the subscriptions
table's changelog from its start, outside the consumer group.

Each worker needs them all (an event on any partition may match any subscription,
and the dispatcher signs with their secrets). The table itself is partitioned by
subscription id and written only by the key's owner; this copy follows every
partition's changelog, and the owner also puts its own writes in at once. Event
agents wait for `caught_up` before matching, so a restarted worker never records
an event against a list of subscriptions it has not finished reading.
"""

import asyncio
import logging

from aiokafka.structs import TopicPartition
from pydantic import TypeAdapter, ValidationError

from services.runtime.settings import ServiceSettings
from services.webhooks.domain.subscriptions import Subscription
from services.webhooks.kafka import consumer

log = logging.getLogger(__name__)

_json = TypeAdapter(Subscription)


class SubscriptionsReplica:
    def __init__(self) -> None:
        self._subscriptions: dict[str, Subscription] = {}
        self.caught_up = asyncio.Event()

    def get(self, subscription_id: str) -> Subscription | None:
        return self._subscriptions.get(subscription_id)

    def all(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    def put(self, subscription: Subscription) -> None:
        self._subscriptions[subscription.subscription_id] = subscription

    def remove(self, subscription_id: str) -> None:
        self._subscriptions.pop(subscription_id, None)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        # Bytes that are not UTF-8 are replaced: a bad record is skipped, never a crash.
        # It would come back on every restart, as the replica reads from the start.
        subscription_id = key.decode(errors="replace")
        if value is None:
            self.remove(subscription_id)
            return
        try:
            self.put(_json.validate_json(value))
        except ValidationError:
            log.exception("unreadable subscription on the changelog", extra={"key": subscription_id})

    async def follow(self, settings: ServiceSettings, topic: str) -> None:
        """Read `topic` from its start, forever; set `caught_up` once at its end."""
        reader = consumer(settings)
        await reader.start()
        try:
            # Every topic of the service has this many partitions (ensure_topics checks).
            assigned = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
            reader.assign(assigned)
            await reader.seek_to_beginning(*assigned)
            end = await reader.end_offsets(assigned)
            while True:
                for records in (await reader.getmany(timeout_ms=500)).values():
                    for record in records:
                        self.apply(record.key, record.value)
                if not self.caught_up.is_set():
                    positions = [await reader.position(tp) for tp in assigned]
                    if all(position >= end[tp] for position, tp in zip(positions, assigned, strict=True)):
                        self.caught_up.set()
                        log.info("subscriptions read", extra={"subscriptions": len(self._subscriptions)})
        finally:
            await reader.stop()
