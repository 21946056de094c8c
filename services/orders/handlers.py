"""Orders' use cases: won deals in, orders and order.created out."""

from datetime import UTC, datetime
from typing import Any

from schemas.envelope import CloudEvent
from schemas.events import DealClosed, Outcome
from services.orders import metrics
from services.orders.app import orders, runtime
from services.orders.commands import ChangeStatus
from services.orders.domain import orders as lifecycle
from services.orders.domain.orders import Order
from services.runtime.errors import NotFound


def now() -> datetime:
    return datetime.now(UTC)


async def on_deal_closed(event: CloudEvent[DealClosed]) -> None:
    deal = event.data
    if deal.outcome is not Outcome.WON:
        return
    if deal.lead_id in orders:
        return  # delivered again: the order exists already
    order, created = lifecycle.order_from_deal(deal, now())
    # Publish before storing: a crash in between redelivers the deal, which
    # publishes again rather than never.
    await runtime.publisher.publish(created, subject=order.lead_id)
    orders[order.lead_id] = order
    metrics.ORDERS_CREATED.labels(currency=order.currency).inc()


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
