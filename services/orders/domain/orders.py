"""An Order: made from a won deal, once, and taken through its lifecycle."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.envelope import CloudEvent, once_id
from schemas.events import Customer, DealClosed, OrderCreated, OrderLine, OrderUpdated, Outcome
from schemas.events import OrderStatus as PublicStatus
from schemas.money import Amount, Currency
from services.runtime.errors import Conflict

ORDER_ID_PREFIX = "order-"
DEAL_ID_PREFIX = "deal-"


class OrderStatus(StrEnum):
    CREATED = "created"
    CONFIRMED = "confirmed"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


# Where an order may go from each status; fulfilled and cancelled are final.
MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELLED}),
    OrderStatus.FULFILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class StatusChange(BaseModel):
    status: OrderStatus
    at: AwareDatetime
    by: str | None = Field(default=None, description="Who moved the order here; null when Leadflow did")


class Order(BaseModel):
    # Frozen: its table hands one decoded value to a handler and to the tallies
    # (services.runtime.tables); every change is a model_copy.
    model_config = ConfigDict(frozen=True)

    order_id: str
    deal_id: str
    lead_id: str
    customer: Customer
    lines: list[OrderLine]
    total: Amount
    currency: Currency
    status: OrderStatus
    created_at: AwareDatetime
    deal_closed_at: AwareDatetime
    # Every status the order went through, with when: the first entry is `created`.
    history: list[StatusChange] = Field(default_factory=list)


def order_id_for(lead_id: str) -> str:
    """One order per won deal, one deal per lead. The id embeds the lead id, the
    partition key, so any worker can route a request about an order."""
    return ORDER_ID_PREFIX + lead_id


def lead_id_of(order_id: str) -> str | None:
    return order_id.removeprefix(ORDER_ID_PREFIX) if order_id.startswith(ORDER_ID_PREFIX) else None


def lead_id_of_deal(deal_id: str) -> str | None:
    """The lead of a deal id as sales makes them (`deal-<lead_id>`), the order's key."""
    return deal_id.removeprefix(DEAL_ID_PREFIX) if deal_id.startswith(DEAL_ID_PREFIX) else None


class TotalMismatch(ValueError):
    """The deal's amount is not what its lines add up to: no order is made from it."""


def order_from_deal(deal: DealClosed) -> Order:
    """The order a won deal makes, its total recomputed from the lines and checked
    against the deal's amount. Raises TotalMismatch rather than make a wrong order.

    It is the same every time the deal is delivered: the order exists from the moment
    its deal is won, so it is created at the deal's `closed_at` (as Kafka Streams gives
    a derived record its input's time). A redelivery after a crash makes, stores and
    publishes an identical order, whichever of its writes had reached the broker."""
    if deal.outcome is not Outcome.WON:
        raise ValueError(f"deal {deal.deal_id} was {deal.outcome}; only won deals make orders")
    lines = [
        OrderLine(
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            unit_price=line.unit_price,
            line_total=line.unit_price * line.quantity,
        )
        for line in deal.lines
    ]
    total = sum((line.line_total for line in lines), Decimal("0"))
    if total != deal.amount:
        raise TotalMismatch(
            f"deal {deal.deal_id} says amount {deal.amount} {deal.currency} but its lines add up to {total}"
        )
    return Order(
        order_id=order_id_for(deal.lead_id),
        deal_id=deal.deal_id,
        lead_id=deal.lead_id,
        customer=deal.customer,
        lines=lines,
        total=total,
        currency=deal.currency,
        status=OrderStatus.CREATED,
        created_at=deal.closed_at,
        deal_closed_at=deal.closed_at,
        history=[StatusChange(status=OrderStatus.CREATED, at=deal.closed_at)],
    )


def created_event(order: Order, *, namespace: UUID, source: str) -> CloudEvent[OrderCreated]:
    """The order.created of `order`, the same every time it is built: its id derives
    from the order id and its time is the order's. An order published again (its
    deal delivered again after a crash) is an exact copy subscribers drop by id."""
    data = OrderCreated(
        order_id=order.order_id,
        deal_id=order.deal_id,
        lead_id=order.lead_id,
        customer=order.customer,
        lines=order.lines,
        total=order.total,
        currency=order.currency,
        created_at=order.created_at,
    )
    return CloudEvent[OrderCreated](
        id=once_id(namespace, OrderCreated.TYPE, order.order_id),
        source=source,
        type=OrderCreated.TYPE,
        time=order.created_at,
        subject=order.lead_id,
        dataschema=OrderCreated.dataschema(),
        data=data,
    )


def change_status(order: Order, to: OrderStatus, now: datetime, *, by: str | None = None) -> Order:
    if to not in MOVES[order.status]:
        raise Conflict(f"order {order.order_id} is {order.status}; it cannot become {to}", field="status")
    return order.model_copy(
        update={"status": to, "history": [*order.history, StatusChange(status=to, at=now, by=by)]}
    )


def deal_to_order_seconds(order: Order, now: datetime) -> float:
    """How long after its deal's close the order was made, by this worker's clock
    (never negative: the two clocks are different machines')."""
    return max(0.0, (now - order.deal_closed_at).total_seconds())


def updated_event(order: Order) -> tuple[OrderUpdated, str] | None:
    """The order.updated of `order`'s latest status change, from the order as stored
    (the same event however often it is made), with what it happens once for: each
    status is reached at most once, so its id derives from the order and the status.
    None for an order that has only been created (that is order.created's)."""
    if len(order.history) < 2:
        return None
    previous, latest = order.history[-2], order.history[-1]
    event = OrderUpdated(
        order_id=order.order_id,
        deal_id=order.deal_id,
        lead_id=order.lead_id,
        status=PublicStatus(latest.status),
        previous_status=PublicStatus(previous.status),
        total=order.total,
        currency=order.currency,
        updated_at=latest.at,
        by=latest.by,
    )
    return event, f"{order.order_id}:{latest.status}"
