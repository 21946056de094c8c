"""Replay: read the subscribed topics again, from a time or for one event id, and
queue what matches the subscription once more. It re-sends what is still on the
topics (their retention decides how far back that goes)."""

from datetime import datetime

from aiokafka.structs import TopicPartition

from schemas.events import EVENT_DATA
from services.runtime.errors import Unprocessable
from services.runtime.events import accepted_event, event_adapter
from services.runtime.tables import MAX_VALUE_BYTES
from services.webhooks.commands import Requeue
from services.webhooks.domain.subscriptions import Subscription
from services.webhooks.kafka import consumer
from services.webhooks.settings import WebhooksSettings


class TooMany(Unprocessable):
    pass


async def find(
    settings: WebhooksSettings,
    subscription: Subscription,
    *,
    since: datetime | None,
    event_id: str | None,
) -> list[Requeue]:
    """The events on the subscription's topics from `since` (their record time), or
    from the start, that match it (and are `event_id`, if given), oldest first."""
    reader = consumer(settings)
    await reader.start()
    try:
        assigned = [
            TopicPartition(topic, partition)
            for topic in subscription.event_types
            for partition in range(settings.topic_partitions)
        ]
        reader.assign(assigned)
        # Let the reset that assigning starts finish before seeking to a time: one
        # still under way can land after the seek and win.
        for tp in assigned:
            await reader.position(tp)
        end = await reader.end_offsets(assigned)
        if since is None:
            await reader.seek_to_beginning(*assigned)
        else:
            starts = await reader.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in assigned})
            for tp, found in starts.items():
                reader.seek(tp, end[tp] if found is None else found.offset)
        found_events: list[Requeue] = []
        while True:
            positions = {tp: await reader.position(tp) for tp in assigned}
            if all(positions[tp] >= end[tp] for tp in assigned):
                break
            for records in (await reader.getmany(timeout_ms=500)).values():
                for record in records:
                    requeue = _matching(record.topic, record.key, record.value, subscription, event_id)
                    if requeue is not None:
                        found_events.append(requeue)
                        if len(found_events) > settings.replay_limit:
                            raise TooMany(
                                f"more than {settings.replay_limit} events; replay from a later time",
                                field="since",
                            )
        found_events.sort(key=lambda r: r.event_time)
        return found_events
    finally:
        await reader.stop()


def storable(requeue: Requeue) -> bool:
    """Whether its delivery fits the deliveries table: a delivery holds the event's
    body, and the table refuses a value over Kafka's record limit. An event that does
    not fit was dead-lettered when it came (see handlers.on_event); queued again, it
    would be refused out of sight of the caller, who has had a 202 by then."""
    return len(requeue.model_dump_json()) <= MAX_VALUE_BYTES


# Each topic's events, checked as its consumers check them (services/runtime/events.py).
_ADAPTERS = {topic: event_adapter(model) for topic, model in EVENT_DATA.items()}


def _matching(
    topic: str, key: bytes | None, value: bytes | None, subscription: Subscription, event_id: str | None
) -> Requeue | None:
    try:
        event = accepted_event(_ADAPTERS[topic], key, value)
        body = (value or b"").decode()
    except (KeyError, ValueError):  # pydantic's ValidationError and UnicodeDecodeError included
        return None  # not an event of this topic: its consumers dead-letter it, nothing to send
    if event_id is not None and str(event.id) != event_id:
        return None
    if not subscription.matches(event.type, event.data.model_dump(mode="json")):
        return None
    return Requeue(
        lead_id=event.subject,
        subscription_id=subscription.subscription_id,
        event_id=str(event.id),
        event_type=event.type,
        event_time=event.time,
        body=body,
    )
