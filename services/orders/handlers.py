"""Orders' use cases: won deals in, orders and order.created out.

One order per won deal however often its deal.closed arrives: the orders table,
keyed by lead id and recovered from its changelog, says whether the order exists.
The order is stored before its order.created is sent, and marked published once
the broker has it; a crash anywhere in between redelivers the deal (its offset is
committed only after everything produced for it is flushed), and the redelivery
finishes the job: it publishes the stored order's event, identical to any copy
already out, or skips an order already published.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from schemas.envelope import CloudEvent
from schemas.events import DealClosed, Outcome
from services.orders import metrics
from services.orders.app import app, orders, runtime, settings
from services.orders.commands import ChangeStatus
from services.orders.domain import orders as lifecycle
from services.orders.domain.orders import Order
from services.runtime.errors import NotFound

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


async def on_deal_closed(event: CloudEvent[DealClosed]) -> None:
    deal = event.data
    if deal.outcome is not Outcome.WON:
        return  # a lost deal makes no order
    # Checked on every delivery: a deal whose total does not add up is refused
    # (TotalMismatch, dead-lettered with its reason), even when an order exists.
    made = lifecycle.order_from_deal(deal, now())
    order = orders.get(deal.lead_id)
    if order is None:
        order = made
        orders[order.lead_id] = order
        metrics.order_created(order)
        log.info("order created", extra={"order_id": order.order_id, "deal_id": order.deal_id})
    elif order.published_at is not None:
        log.info("deal delivered again: its order exists", extra={"order_id": order.order_id})
        return
    # New, or stored by a delivery that crashed before its event was out.
    await publish_created(order)
    orders[order.lead_id] = lifecycle.published(order, now())


async def publish_created(order: Order) -> None:
    """Send the order's order.created and wait until the broker has it."""
    # The stored order goes out first: an event must never announce an order that a
    # crash could make the restarted worker create again, with another created_at.
    await app.producer.flush()
    event = lifecycle.created_event(order, namespace=settings.id_namespace, source=settings.source)
    await runtime.publisher.send(event, wait=True)


async def change_status(command: ChangeStatus) -> Order:
    order = orders.get(command.lead_id)
    if order is None:
        raise NotFound(f"no order {lifecycle.order_id_for(command.lead_id)!r}")
    order = lifecycle.change_status(order, command.status, now())
    orders[order.lead_id] = order
    metrics.STATUS_CHANGES.labels(status=order.status).inc()
    return order


async def handle(command: Any) -> Any:
    match command:
        case ChangeStatus():
            return await change_status(command)
    raise TypeError(f"unknown command {command!r}")
