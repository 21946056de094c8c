"""A Deal through the sales process: prospecting, qualifying, presenting,
handling objections and closing, to won or lost."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from schemas.events import (
    Company,
    Contact,
    Customer,
    DealClosed,
    DealLine,
    LeadQualified,
    LostReason,
    Outcome,
    ScoreReason,
)
from schemas.money import Amount, Currency
from services.runtime.errors import Conflict, Unprocessable
from services.sales.domain.catalog import Catalog, OrderedLine, price

DEAL_ID_PREFIX = "deal-"


class Stage(StrEnum):
    PROSPECTING = "prospecting"
    QUALIFYING = "qualifying"
    PRESENTING = "presenting"
    HANDLING_OBJECTIONS = "handling_objections"
    CLOSING = "closing"
    WON = "won"
    LOST = "lost"


OPEN_STAGES = (
    Stage.PROSPECTING,
    Stage.QUALIFYING,
    Stage.PRESENTING,
    Stage.HANDLING_OBJECTIONS,
    Stage.CLOSING,
)
TERMINAL = frozenset({Stage.WON, Stage.LOST})


def deal_id_for(lead_id: str) -> str:
    """One deal per qualified lead. The id embeds the lead id, the partition key,
    so any worker can route a request about a deal without a lookup."""
    return DEAL_ID_PREFIX + lead_id


def lead_id_of(deal_id: str) -> str | None:
    return deal_id.removeprefix(DEAL_ID_PREFIX) if deal_id.startswith(DEAL_ID_PREFIX) else None


class StageChange(BaseModel):
    stage: Stage
    at: AwareDatetime


class Objection(BaseModel):
    objection: str
    resolution: str | None
    at: AwareDatetime


class Deal(BaseModel):
    deal_id: str
    lead_id: str
    campaign_id: str | None
    stage: Stage
    owner: str | None
    contact: Contact
    company: Company
    score: int
    reasons: list[ScoreReason]
    opened_at: AwareDatetime
    first_contact_at: AwareDatetime | None = None
    stage_entered_at: AwareDatetime
    history: list[StageChange] = Field(default_factory=list)
    objections: list[Objection] = Field(default_factory=list)
    lines: list[DealLine] = Field(default_factory=list)
    amount: Amount | None = None
    currency: Currency | None = None
    lost_reason: LostReason | None = None
    closed_at: AwareDatetime | None = None

    @property
    def is_closed(self) -> bool:
        return self.stage in TERMINAL


def open_deal(qualified: LeadQualified, owner: str | None, now: datetime) -> Deal:
    return Deal(
        deal_id=deal_id_for(qualified.lead_id),
        lead_id=qualified.lead_id,
        campaign_id=qualified.campaign_id,
        stage=Stage.PROSPECTING,
        owner=owner,
        contact=qualified.contact,
        company=qualified.company,
        score=qualified.score,
        reasons=qualified.reasons,
        opened_at=now,
        stage_entered_at=now,
        history=[StageChange(stage=Stage.PROSPECTING, at=now)],
    )


def _touched(deal: Deal, now: datetime) -> dict[str, object]:
    # The first thing a rep does with a deal is its first contact (follow-up SLA).
    return {"first_contact_at": deal.first_contact_at or now}


def move(deal: Deal, to: Stage, now: datetime) -> Deal:
    """Forward through the process; objections may send a deal back to presenting."""
    if deal.is_closed:
        raise Conflict(f"deal {deal.deal_id} is {deal.stage}; it cannot move", field="stage")
    if to in TERMINAL:
        raise Conflict("use POST /deals/{deal_id}/close to win or lose a deal", field="stage")
    here, there = OPEN_STAGES.index(deal.stage), OPEN_STAGES.index(to)
    back_to_presenting = deal.stage is Stage.HANDLING_OBJECTIONS and to is Stage.PRESENTING
    if there <= here and not back_to_presenting:
        raise Conflict(f"deal {deal.deal_id} cannot move from {deal.stage} back to {to}", field="stage")
    return deal.model_copy(
        update={
            "stage": to,
            "stage_entered_at": now,
            "history": [*deal.history, StageChange(stage=to, at=now)],
            **_touched(deal, now),
        }
    )


def record_objection(deal: Deal, objection: str, resolution: str | None, now: datetime) -> Deal:
    if deal.is_closed:
        raise Conflict(f"deal {deal.deal_id} is {deal.stage}")
    return deal.model_copy(
        update={
            "objections": [*deal.objections, Objection(objection=objection, resolution=resolution, at=now)],
            **_touched(deal, now),
        }
    )


def close(
    deal: Deal,
    outcome: Outcome,
    *,
    lines: list[OrderedLine],
    lost_reason: LostReason | None,
    catalog: Catalog,
    now: datetime,
) -> tuple[Deal, DealClosed]:
    if deal.is_closed:
        raise Conflict(f"deal {deal.deal_id} is already {deal.stage}")
    if outcome is Outcome.WON:
        if lost_reason is not None:
            raise Unprocessable("a won deal has no lost_reason", field="lost_reason")
        priced, amount = price(lines, catalog)
        stage, reason = Stage.WON, None
    else:
        if lost_reason is None:
            raise Unprocessable("a lost deal needs a lost_reason", field="lost_reason")
        if lines:
            raise Unprocessable("a lost deal has no lines", field="lines")
        priced, amount, stage, reason = [], Decimal("0.00"), Stage.LOST, lost_reason
    closed = deal.model_copy(
        update={
            "stage": stage,
            "stage_entered_at": now,
            "history": [*deal.history, StageChange(stage=stage, at=now)],
            "lines": priced,
            "amount": amount,
            "currency": catalog.currency,
            "lost_reason": reason,
            "closed_at": now,
            **_touched(deal, now),
        }
    )
    event = DealClosed(
        deal_id=deal.deal_id,
        lead_id=deal.lead_id,
        campaign_id=deal.campaign_id,
        outcome=outcome,
        lost_reason=reason,
        owner=deal.owner,
        customer=Customer(company=deal.company, contact=deal.contact),
        lines=priced,
        amount=amount,
        currency=catalog.currency,
        opened_at=deal.opened_at,
        first_contact_at=closed.first_contact_at,
        closed_at=now,
    )
    return closed, event
