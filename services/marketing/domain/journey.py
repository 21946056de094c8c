"""What happened to a lead after the handover, as sales and orders announced it:
its deal's opening, owner, first contact, the stages it reached, its order and
whether that was fulfilled or cancelled.

Fed by deal.updated, deal.closed, order.created and order.updated. Those come on
four topics, read by four agents, so they may arrive in any order and more than once. Each
merge is therefore order-free and idempotent: times keep their earliest value,
stages reached are a set, the owner is kept once known. Applying the same event
again, or two events in either order, gives the same journey.
"""

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import DealClosed, DealStage, DealUpdated, OrderCreated, OrderStatus, OrderUpdated
from schemas.money import Amount, Currency

OPEN_STAGES = (
    DealStage.PROSPECTING,
    DealStage.QUALIFYING,
    DealStage.PRESENTING,
    DealStage.HANDLING_OBJECTIONS,
    DealStage.CLOSING,
)


class Journey(BaseModel):
    model_config = ConfigDict(frozen=True)

    deal_opened_at: AwareDatetime | None = None
    owner: str | None = None
    first_contact_at: AwareDatetime | None = None
    # When the follow-up SLA ran out, as sales set it: only deal.updated says.
    follow_up_due_at: AwareDatetime | None = None
    # Open stages the deal reached, in process order (a stage skipped is not reached).
    stages: list[DealStage] = Field(default_factory=list)
    ordered_at: AwareDatetime | None = None
    order_total: Amount | None = None
    order_currency: Currency | None = None
    fulfilled_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _reached(journey: Journey, *stages: DealStage) -> list[DealStage]:
    have = set(journey.stages) | {s for s in stages if s in OPEN_STAGES}
    return [s for s in OPEN_STAGES if s in have]


def with_update(journey: Journey | None, update: DealUpdated) -> Journey:
    j = journey or Journey()
    return j.model_copy(
        update={
            "deal_opened_at": _earliest(j.deal_opened_at, update.opened_at),
            "owner": j.owner or update.owner,
            "first_contact_at": _earliest(j.first_contact_at, update.first_contact_at),
            "follow_up_due_at": j.follow_up_due_at or update.follow_up_due_at,
            "stages": _reached(
                j, DealStage.PROSPECTING, update.stage, *filter(None, [update.previous_stage])
            ),
        }
    )


def with_close(journey: Journey | None, closed: DealClosed) -> Journey:
    j = journey or Journey()
    return j.model_copy(
        update={
            "deal_opened_at": _earliest(j.deal_opened_at, closed.opened_at),
            "owner": j.owner or closed.owner,
            "first_contact_at": _earliest(j.first_contact_at, closed.first_contact_at),
            "stages": _reached(j, DealStage.PROSPECTING),
        }
    )


def with_order(journey: Journey | None, order: OrderCreated) -> Journey:
    j = journey or Journey()
    if j.ordered_at is not None:
        return j  # one order per won deal: the same order.created again
    return j.model_copy(
        update={"ordered_at": order.created_at, "order_total": order.total, "order_currency": order.currency}
    )


def with_order_update(journey: Journey | None, update: OrderUpdated) -> Journey:
    j = journey or Journey()
    match update.status:
        case OrderStatus.FULFILLED:
            return j.model_copy(update={"fulfilled_at": _earliest(j.fulfilled_at, update.updated_at)})
        case OrderStatus.CANCELLED:
            return j.model_copy(update={"cancelled_at": _earliest(j.cancelled_at, update.updated_at)})
    return j  # confirmed: not a step of the funnel
