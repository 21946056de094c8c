"""Sending the deliveries that are due, from the partitions this worker is active for.

Which leads have a delivery due is kept in memory (`_due`: lead id -> the earliest
time one of its queues' heads is due), updated on every write to the deliveries
table and rebuilt with one pass over the table after each rebalance, so a tick
reads only the leads that have something due. A tick starts one task per due
head, within the limits in flight (all, and per subscription: a slow receiver
uses up its own share only). An attempt's outcome goes back as a RecordAttempt
command keyed by the lead; the agent applying it is the only writer of the table.
Until the table shows that attempt, the delivery counts as in flight and is not
sent again; if the outcome never arrives (the worker lost the partition, or
died), the delivery is sent again: at least once, with the same webhook-id.
"""

import asyncio
import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx

from services.runtime.cluster import Cluster
from services.runtime.commands import Commands
from services.runtime.tables import ModelTable
from services.webhooks import metrics, sending
from services.webhooks.commands import CancelDeliveries, RecordAttempt
from services.webhooks.domain.deliveries import Delivery, LeadDeliveries
from services.webhooks.domain.subscriptions import Subscription
from services.webhooks.replica import SubscriptionsReplica
from services.webhooks.settings import WebhooksSettings

log = logging.getLogger(__name__)

# Lead id, subscription id, event id, when queued (a replay queues the same event again).
InFlight = tuple[str, str, str, datetime]


class Dispatcher:
    def __init__(
        self,
        settings: WebhooksSettings,
        cluster: Cluster,
        deliveries: ModelTable[LeadDeliveries],
        replica: SubscriptionsReplica,
        commands: Commands[Any],
    ) -> None:
        self._settings = settings
        self._cluster = cluster
        self._deliveries = deliveries
        self._replica = replica
        self._commands = commands
        self._due: dict[str, datetime] = {}
        self._built_after: int | None = None
        # The attempt number sent, and until when (monotonic) to wait for its outcome.
        self._in_flight: dict[InFlight, tuple[int, float]] = {}
        self._per_subscription: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        deliveries.on_write(self._written)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def pending_leads(self) -> int:
        return len(self._due)

    def _written(self, lead_id: str, _before: LeadDeliveries | None, after: LeadDeliveries) -> None:
        if self._built_after is None:
            return
        due = after.next_due()
        if due is None:
            self._due.pop(lead_id, None)
        else:
            self._due[lead_id] = due

    def _rebuild(self) -> None:
        app = self._cluster.app
        if self._built_after == app.rebalancing_count:
            return
        self._due = {}
        for lead_id, entry in self._cluster.local_items(self._deliveries):
            due = entry.next_due()
            if due is not None:
                self._due[lead_id] = due
        self._built_after = app.rebalancing_count
        log.info("deliveries due rebuilt", extra={"leads": len(self._due)})

    def ready(self) -> bool:
        app = self._cluster.app
        return (
            not app.rebalancing
            and not app.should_stop
            and app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
            and self._replica.caught_up.is_set()
        )

    async def tick(self, now: datetime) -> int:
        """Start sending what is due at `now`; return how many attempts were started."""
        if not self.ready():
            return 0
        self._rebuild()
        self._forget_lost()
        started = 0
        for lead_id in [lead for lead, due in self._due.items() if due <= now]:
            entry = self._deliveries.get(lead_id)
            if entry is None:
                self._due.pop(lead_id, None)
                continue
            for subscription_id, head in entry.heads().items():
                if head.next_attempt_at is None or head.next_attempt_at > now:
                    continue
                if len(self._tasks) >= self._settings.max_in_flight:
                    return started
                started += await self._start(lead_id, subscription_id, head)
        return started

    def _forget_lost(self) -> None:
        """Drop in-flight marks whose outcome is no longer awaited (and those of
        deliveries that have settled since), so the marks do not pile up."""
        expired = time.monotonic()
        for key in [k for k, (_, until) in self._in_flight.items() if until < expired]:
            del self._in_flight[key]

    def _busy(self, key: InFlight, head: Delivery) -> bool:
        flight = self._in_flight.get(key)
        if flight is None:
            return False
        attempt, until = flight
        if head.attempts >= attempt or time.monotonic() > until:
            del self._in_flight[key]  # its outcome is in the table, or is not coming
            return False
        return True

    async def _start(self, lead_id: str, subscription_id: str, head: Delivery) -> int:
        key = (lead_id, subscription_id, head.event_id, head.queued_at)
        if self._busy(key, head):
            return 0
        subscription = self._replica.get(subscription_id)
        wait = self._settings.attempt_timeout_seconds + 30
        if subscription is None or not subscription.records:
            reason = "subscription deleted" if subscription is None else "subscription disabled"
            self._in_flight[key] = (head.attempts + 1, time.monotonic() + wait)
            await self._commands.topic.send(
                key=lead_id.encode(),
                value=CancelDeliveries(lead_id=lead_id, subscription_id=subscription_id, reason=reason)
                .model_dump_json()
                .encode(),
            )
            return 0
        if not subscription.sends:
            return 0  # paused: held until resumed
        if self._per_subscription[subscription_id] >= self._settings.max_in_flight_per_subscription:
            return 0
        self._in_flight[key] = (head.attempts + 1, time.monotonic() + wait)
        self._per_subscription[subscription_id] += 1
        task = asyncio.create_task(self._attempt(lead_id, subscription, head))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return 1

    async def _attempt(self, lead_id: str, subscription: Subscription, head: Delivery) -> None:
        subscription_id = subscription.subscription_id
        try:
            attempt = await sending.send(
                self.client,
                self._settings,
                url=subscription.url,
                secrets=subscription.signing_secrets(sending.now()),
                message_id=head.event_id,
                body=(head.body or "").encode(),
                number=head.attempts + 1,
            )
            metrics.attempted(head.event_type, attempt)
            outcome = RecordAttempt(
                lead_id=lead_id, subscription_id=subscription_id, event_id=head.event_id, attempt=attempt
            )
            await self._commands.topic.send(key=lead_id.encode(), value=outcome.model_dump_json().encode())
        except Exception:
            # Sent again once its in-flight mark runs out.
            log.exception("delivery attempt failed", extra={"subscription_id": subscription_id})
        finally:
            self._per_subscription[subscription_id] -= 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
