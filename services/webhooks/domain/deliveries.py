"""Deliveries of events to subscriptions, per lead: queued, attempted, settled.

One `LeadDeliveries` per lead holds, per subscription, that lead's deliveries in
the order they are to be made. Only the first pending one of a queue is sent: a
later event of the same lead waits behind an earlier one that is not delivered
yet (or dead), while other leads' queues and other subscriptions' are not held
up. Settled deliveries stay as the delivery log, the last LOG_LIMIT per queue,
without their body.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.topics import (
    DEAL_CLOSED,
    DEAL_UPDATED,
    LEAD_CREATED,
    LEAD_QUALIFIED,
    ORDER_CREATED,
    ORDER_UPDATED,
)
from services.webhooks.domain.retries import RetryPolicy

# Settled deliveries kept per lead and subscription (a lead has a handful of events).
LOG_LIMIT = 20
# A lead's events in the order they happen, for events of one instant: an
# order.created carries its deal's close time, the time of the deal.closed before it.
LIFECYCLE = (LEAD_CREATED, LEAD_QUALIFIED, DEAL_UPDATED, DEAL_CLOSED, ORDER_CREATED, ORDER_UPDATED)


def happened(event_type: str, event_time: datetime) -> tuple[datetime, int]:
    """Sort key of a lead's events: their time, then their place in the lifecycle."""
    rank = LIFECYCLE.index(event_type) if event_type in LIFECYCLE else len(LIFECYCLE)
    return event_time, rank


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # every attempt failed
    CANCELLED = "cancelled"  # its subscription was deleted or disabled first


class Delivery(BaseModel):
    event_id: str
    event_type: str
    event_time: AwareDatetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    queued_at: AwareDatetime
    next_attempt_at: AwareDatetime | None
    last_attempt_at: AwareDatetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    settled_at: AwareDatetime | None = None
    replay: bool = False
    # The CloudEvent as it was on the topic, the request body; dropped once settled.
    body: str | None = Field(default=None, repr=False)

    @property
    def pending(self) -> bool:
        return self.status is DeliveryStatus.PENDING


class LeadDeliveries(BaseModel):
    # Frozen: its table hands one decoded value to a handler and to the tallies
    # (services.runtime.tables); every change is a model_copy.
    model_config = ConfigDict(frozen=True)

    lead_id: str
    queues: dict[str, list[Delivery]] = Field(default_factory=dict)

    def head(self, subscription_id: str) -> Delivery | None:
        """The delivery of the queue to make next: its first pending one."""
        return next((d for d in self.queues.get(subscription_id, []) if d.pending), None)

    def heads(self) -> dict[str, Delivery]:
        found = {}
        for subscription_id in self.queues:
            head = self.head(subscription_id)
            if head is not None:
                found[subscription_id] = head
        return found

    def next_due(self) -> datetime | None:
        times = [h.next_attempt_at for h in self.heads().values() if h.next_attempt_at is not None]
        return min(times) if times else None


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    GONE = "gone"
    STALE = "stale"  # an outcome already applied, or for a delivery no longer pending


class Attempt(BaseModel):
    """What one attempt at a delivery got back: a status code, or an error (no answer)."""

    number: int = Field(ge=1)
    at: AwareDatetime
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    seconds: float = Field(default=0.0, ge=0)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def enqueue(
    entry: LeadDeliveries,
    subscription_id: str,
    *,
    event_id: str,
    event_type: str,
    event_time: datetime,
    body: str,
    now: datetime,
    replay: bool = False,
) -> LeadDeliveries | None:
    """`entry` with the event queued for the subscription, or None if nothing changes:
    an event already queued or delivered is not queued again (a redelivered record),
    unless `replay` asks to send a settled one again."""
    queue = entry.queues.get(subscription_id, [])
    earlier = [d for d in queue if d.event_id == event_id]
    if any(d.pending for d in earlier) or (earlier and not replay):
        return None
    delivery = Delivery(
        event_id=event_id,
        event_type=event_type,
        event_time=event_time,
        queued_at=now,
        next_attempt_at=now,
        replay=replay,
        body=body,
    )
    # Before every pending delivery of a later event: topics are read side by side,
    # so a lead's events may be recorded out of the order they happened (an
    # order.created before its deal.closed), and one not delivered yet, tried or
    # not, must not reach the receiver first. Only an attempt already in flight
    # can still overtake it.
    key = happened(event_type, event_time)
    position = len(queue)
    for index, queued in enumerate(queue):
        if queued.pending and happened(queued.event_type, queued.event_time) > key:
            position = index
            break
    queue = [*queue[:position], delivery, *queue[position:]]
    return _with_queue(entry, subscription_id, queue)


def record_attempt(
    entry: LeadDeliveries,
    subscription_id: str,
    event_id: str,
    attempt: Attempt,
    policy: RetryPolicy,
    draw: float,
) -> tuple[LeadDeliveries, Verdict]:
    """Apply what an attempt got back; `draw` in [0, 1) is the retry delay's jitter."""
    queue = entry.queues.get(subscription_id, [])
    index = next((i for i, d in enumerate(queue) if d.event_id == event_id and d.pending), None)
    if index is None or queue[index].attempts + 1 != attempt.number:
        return entry, Verdict.STALE
    delivery = queue[index]
    seen = {
        "attempts": attempt.number,
        "last_attempt_at": attempt.at,
        "last_status_code": attempt.status_code,
        "last_error": attempt.error,
    }
    if attempt.succeeded:
        verdict = Verdict.DELIVERED
        done = _settled(delivery, DeliveryStatus.DELIVERED, attempt.at, seen)
    elif attempt.status_code == 410:
        verdict = Verdict.GONE
        done = _settled(delivery, DeliveryStatus.CANCELLED, attempt.at, seen)
    elif policy.is_last(attempt.number):
        verdict = Verdict.DEAD
        done = _settled(delivery, DeliveryStatus.DEAD, attempt.at, seen)
    else:
        verdict = Verdict.RETRY
        due = attempt.at + policy.delay_after(attempt.number, draw)
        done = delivery.model_copy(update={**seen, "next_attempt_at": due})
    queue = [*queue[:index], done, *queue[index + 1 :]]
    return _with_queue(entry, subscription_id, queue), verdict


def cancel(entry: LeadDeliveries, subscription_id: str, now: datetime, reason: str) -> LeadDeliveries:
    """Settle every pending delivery of the subscription as cancelled."""
    queue = [
        _settled(d, DeliveryStatus.CANCELLED, now, {"last_error": reason}) if d.pending else d
        for d in entry.queues.get(subscription_id, [])
    ]
    return _with_queue(entry, subscription_id, queue)


def _settled(delivery: Delivery, status: DeliveryStatus, at: datetime, update: dict[str, object]) -> Delivery:
    return delivery.model_copy(
        update={**update, "status": status, "settled_at": at, "next_attempt_at": None, "body": None}
    )


def _with_queue(entry: LeadDeliveries, subscription_id: str, queue: list[Delivery]) -> LeadDeliveries:
    settled = [i for i, d in enumerate(queue) if not d.pending]
    if len(settled) > LOG_LIMIT:
        dropped = set(settled[: len(settled) - LOG_LIMIT])
        queue = [d for i, d in enumerate(queue) if i not in dropped]
    return entry.model_copy(update={"queues": {**entry.queues, subscription_id: queue}})
