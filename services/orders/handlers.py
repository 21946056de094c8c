"""Orders' use cases: won deals in, orders, order.created and order.updated out.

One order per won deal however often its deal.closed arrives: the orders table,
keyed by lead id and recovered from its changelog, says whether the order exists,
and the order a deal makes is the same on every delivery. A crash before the
deal's offset is committed (Faust commits only after the producer has flushed
everything sent for it) redelivers the deal, and the redelivery finishes the job
with an identical order and an identical order.created.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from schemas.envelope import CloudEvent
from schemas.events import DealClosed, Outcome
from services.orders import metrics
from services.orders.app import orders, runtime, settings
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
    made = lifecycle.order_from_deal(deal)
    order = orders.get(deal.lead_id)
    if order is None:
        order = orders[made.lead_id] = made
        metrics.order_created(order, now())
        # Per record, so not at INFO: it cost a tenth of the hop (counted in metrics anyway).
        log.debug("order created", extra={"order_id": order.order_id, "deal_id": order.deal_id})
    # Sent on every delivery, without waiting: the deal's offset is committed only
    # once the producer has flushed this and the stored order, and a delivery again
    # means one of them may not have got out. The copy is identical (same id, same
    # content), so subscribers drop it.
    await runtime.publisher.send(
        lifecycle.created_event(order, namespace=settings.id_namespace, source=settings.source)
    )


async def change_status(command: ChangeStatus) -> Order:
    order = orders.get(command.lead_id)
    if order is None:
        raise NotFound(f"no order {lifecycle.order_id_for(command.lead_id)!r}")
    if order.status is command.status:
        # Moved already: the change may have been stored while its order.updated was
        # still in the producer's buffer when the worker died. Announce it again
        # (identical, from the stored order), then refuse as before.
        await _announce(order)
    order = lifecycle.change_status(order, command.status, now(), by=command.by)
    # Announced before stored: a crash in between redelivers the command, which
    # changes and announces again (same id) rather than never.
    await _announce(order)
    orders[order.lead_id] = order
    log.info(
        "order status changed", extra={"order_id": order.order_id, "status": order.status, "by": command.by}
    )
    metrics.STATUS_CHANGES.labels(status=order.status).inc()
    return order


async def _announce(order: Order) -> None:
    update = lifecycle.updated_event(order)
    if update is not None:
        event, once = update
        await runtime.publisher.publish(event, subject=order.lead_id, at=event.updated_at, once_per=once)


async def handle(command: Any) -> Any:
    match command:
        case ChangeStatus():
            return await change_status(command)
    raise TypeError(f"unknown command {command!r}")
