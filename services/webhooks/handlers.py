"""Webhooks' use cases: events in, deliveries recorded; commands applied.

An event's deliveries are recorded in the deliveries table (keyed by its lead)
while the event is handled: Faust commits the event's offset only once that
write is on the changelog, so an event is either recorded or read again after a
crash. Recording is idempotent by event id per subscription, so reading it again
queues nothing twice.
"""

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from schemas.envelope import CloudEvent
from services.runtime.errors import NotFound
from services.webhooks import metrics
from services.webhooks.app import deliveries, replica, settings, subscriptions
from services.webhooks.commands import (
    CancelDeliveries,
    ChangeSubscription,
    CreateSubscription,
    DeleteSubscription,
    NoteDelivery,
    RecordAttempt,
    Requeue,
    RotateSecret,
)
from services.webhooks.domain import deliveries as queues
from services.webhooks.domain import subscriptions as subs
from services.webhooks.domain.deliveries import LeadDeliveries, Verdict
from services.webhooks.domain.subscriptions import Subscription
from services.webhooks.topics import commands

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


async def on_event(event: CloudEvent[Any]) -> None:
    """Queue the event for every subscription it matches."""
    # Matching against a list not fully read yet could miss a subscription for good.
    await replica.caught_up.wait()
    candidates = [s for s in replica.all() if s.records and event.type in s.event_types]
    if not candidates:
        return
    data = event.data.model_dump(mode="json")  # once per event, not per subscription
    matching = [s for s in candidates if s.matches(event.type, data)]
    if not matching:
        return
    # The body is the record as it was on the topic, fields this version of the
    # schema does not know included.
    current = faust.current_event()
    body = (current.message.value or b"").decode() if current is not None else event.model_dump_json()
    lead_id = event.subject
    entry = deliveries.get(lead_id) or LeadDeliveries(lead_id=lead_id)
    changed = False
    at = now()
    for subscription in matching:
        queued = queues.enqueue(
            entry,
            subscription.subscription_id,
            event_id=str(event.id),
            event_type=event.type,
            event_time=event.time,
            body=body,
            now=at,
        )
        if queued is not None:
            entry, changed = queued, True
            metrics.RECORDED.labels(event_type=event.type, replay="false").inc()
    if changed:
        deliveries[lead_id] = entry


# -- subscriptions ------------------------------------------------------------


def _stored(subscription: Subscription) -> Subscription:
    subscriptions[subscription.subscription_id] = subscription
    replica.put(subscription)  # this worker sees its own write at once
    return subscription


def _existing(subscription_id: str) -> Subscription:
    found = subscriptions.get(subscription_id)
    if found is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    return found


async def create(command: CreateSubscription) -> Subscription:
    return _stored(command.subscription)


async def change(command: ChangeSubscription) -> Subscription:
    return _stored(
        subs.change(
            _existing(command.subscription_id),
            now(),
            paused=command.paused,
            event_types=command.event_types,
            flt=command.filter,
            description=command.description,
        )
    )


async def delete(command: DeleteSubscription) -> None:
    _existing(command.subscription_id)
    del subscriptions[command.subscription_id]
    replica.remove(command.subscription_id)
    # Its pending deliveries are cancelled as the dispatcher comes to them.


async def rotate(command: RotateSecret) -> Subscription:
    subscription = _existing(command.subscription_id)
    overlap = timedelta(seconds=command.overlap_seconds)
    return _stored(subs.rotate(subscription, command.secret, now(), overlap))


async def note(command: NoteDelivery) -> None:
    subscription = subscriptions.get(command.subscription_id)
    if subscription is None:
        return
    at = now()
    if command.verdict == "gone":
        changed = subs.gone(subscription, at)
    elif command.verdict == "dead":
        changed = subs.delivery_dead(subscription, at, pause_after=settings.pause_after_dead_deliveries)
    else:
        changed = subs.delivery_succeeded(subscription, at)
    if changed != subscription:
        _stored(changed)
        log.info(
            "subscription status",
            extra={"subscription_id": changed.subscription_id, "status": changed.status},
        )


# -- deliveries ---------------------------------------------------------------


async def record_attempt(command: RecordAttempt) -> Verdict:
    entry = deliveries.get(command.lead_id)
    if entry is None:
        return Verdict.STALE
    entry, verdict = queues.record_attempt(
        entry,
        command.subscription_id,
        command.event_id,
        command.attempt,
        settings.retry_policy,
        random.random(),  # jitter, not a secret
    )
    if verdict is Verdict.STALE:
        return verdict
    deliveries[command.lead_id] = entry
    metrics.settled(verdict)
    subscription = replica.get(command.subscription_id)
    tell = None
    if verdict in (Verdict.DEAD, Verdict.GONE):
        tell = verdict.value
    elif verdict is Verdict.DELIVERED and subscription is not None and subscription.dead_deliveries:
        tell = "delivered"  # no command per delivery: only when it clears a failing state
    if tell is not None:
        news = NoteDelivery(subscription_id=command.subscription_id, verdict=tell)
        await commands.topic.send(key=news.key.encode(), value=news.model_dump_json().encode())
    return verdict


async def requeue(command: Requeue) -> bool:
    entry = deliveries.get(command.lead_id) or LeadDeliveries(lead_id=command.lead_id)
    queued = queues.enqueue(
        entry,
        command.subscription_id,
        event_id=command.event_id,
        event_type=command.event_type,
        event_time=command.event_time,
        body=command.body,
        now=now(),
        replay=True,
    )
    if queued is None:
        return False
    deliveries[command.lead_id] = queued
    metrics.RECORDED.labels(event_type=command.event_type, replay="true").inc()
    return True


async def cancel(command: CancelDeliveries) -> None:
    entry = deliveries.get(command.lead_id)
    if entry is not None and entry.head(command.subscription_id) is not None:
        deliveries[command.lead_id] = queues.cancel(entry, command.subscription_id, now(), command.reason)


async def handle(command: Any) -> Any:
    match command:
        case CreateSubscription():
            return await create(command)
        case ChangeSubscription():
            return await change(command)
        case DeleteSubscription():
            return await delete(command)
        case RotateSecret():
            return await rotate(command)
        case NoteDelivery():
            return await note(command)
        case RecordAttempt():
            return await record_attempt(command)
        case Requeue():
            return await requeue(command)
        case CancelDeliveries():
            return await cancel(command)
    raise TypeError(f"unknown command {command!r}")
