"""A Deal through the sales process: prospecting, qualifying, presenting,
handling objections and closing, to won or lost.

Every stage a deal enters is a visit with the time it entered and left, so time
in stage is known for every stage. The first thing a rep does with a deal (a
move, an objection heard, a contact, a close) is its first contact: the follow-up
SLA measures the time to it (see `follow_up`).
"""

from collections.abc import Sized
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import (
    Company,
    Contact,
    Customer,
    DealChange,
    DealClosed,
    DealStage,
    DealUpdated,
    LeadQualified,
    LostReason,
    Outcome,
    ScoreReason,
)
from schemas.money import Amount, Currency
from services.runtime.errors import Conflict, Unprocessable
from services.sales.domain.catalog import Catalog, OrderedLine, PricedLine, Quote, quote

DEAL_ID_PREFIX = "deal-"


# The stages are part of the public contract since `deal.updated` carries them.
Stage = DealStage


OPEN_STAGES = (
    Stage.PROSPECTING,
    Stage.QUALIFYING,
    Stage.PRESENTING,
    Stage.HANDLING_OBJECTIONS,
    Stage.CLOSING,
)
TERMINAL = frozenset({Stage.WON, Stage.LOST})


class Assignment(StrEnum):
    """Where the deal is in assignment: asked for, waiting for a rep with room, or owned."""

    PENDING = "pending"
    QUEUED = "queued"
    ASSIGNED = "assigned"


class ContactChannel(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    VIDEO_CALL = "video_call"
    MESSAGE = "message"
    OTHER = "other"


def deal_id_for(lead_id: str) -> str:
    """One deal per qualified lead. The id embeds the lead id, the partition key,
    so any worker can route a request about a deal without a lookup."""
    return DEAL_ID_PREFIX + lead_id


def lead_id_of(deal_id: str) -> str | None:
    lead_id = deal_id.removeprefix(DEAL_ID_PREFIX)
    return lead_id if deal_id.startswith(DEAL_ID_PREFIX) and lead_id else None


class StageVisit(BaseModel):
    stage: Stage
    entered_at: AwareDatetime
    left_at: AwareDatetime | None = None
    by: str | None = Field(default=None, description="Who moved the deal here; null when Leadflow did")

    def seconds(self, now: datetime) -> float:
        return ((self.left_at or now) - self.entered_at).total_seconds()


class Objection(BaseModel):
    objection: str
    resolution: str | None
    at: AwareDatetime
    by: str | None = Field(default=None, description="Who recorded it")


class Touchpoint(BaseModel):
    """A contact a rep made with the lead: a call, an email, a meeting."""

    channel: ContactChannel
    note: str | None
    at: AwareDatetime
    by: str | None = Field(default=None, description="Who recorded it")


class Deal(BaseModel):
    # Frozen: its table hands one decoded value to a handler and to the tallies
    # (services.runtime.tables); every change is a model_copy.
    model_config = ConfigDict(frozen=True)

    deal_id: str
    lead_id: str
    campaign_id: str | None
    stage: Stage
    owner: str | None = Field(description="The rep who owns the deal; null while unassigned")
    assignment: Assignment = Assignment.PENDING
    assigned_at: AwareDatetime | None = None
    contact: Contact
    company: Company
    score: int
    reasons: list[ScoreReason]
    qualified_at: AwareDatetime
    opened_at: AwareDatetime
    first_contact_at: AwareDatetime | None = None
    stage_entered_at: AwareDatetime
    history: list[StageVisit] = Field(default_factory=list)
    objections: list[Objection] = Field(default_factory=list)
    contacts: list[Touchpoint] = Field(default_factory=list)
    proposal: Quote | None = Field(default=None, description="What is on offer while the deal is open")
    lines: list[PricedLine] = Field(default_factory=list)
    list_amount: Amount | None = None
    discount_amount: Amount | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    catalog_version: str | None = None
    lost_reason: LostReason | None = None
    closed_at: AwareDatetime | None = None
    closed_by: str | None = Field(default=None, description="Who closed it")

    @property
    def is_closed(self) -> bool:
        return self.stage in TERMINAL

    @property
    def current_visit(self) -> StageVisit:
        return self.history[-1]

    @property
    def last_left(self) -> StageVisit | None:
        """The stage visit that ended most recently."""
        return self.history[-2] if len(self.history) > 1 else None


def open_deal(qualified: LeadQualified, now: datetime) -> Deal:
    return Deal(
        deal_id=deal_id_for(qualified.lead_id),
        lead_id=qualified.lead_id,
        campaign_id=qualified.campaign_id,
        stage=Stage.PROSPECTING,
        owner=None,
        contact=qualified.contact,
        company=qualified.company,
        score=qualified.score,
        reasons=qualified.reasons,
        qualified_at=qualified.qualified_at,
        opened_at=now,
        stage_entered_at=now,
        history=[StageVisit(stage=Stage.PROSPECTING, entered_at=now)],
    )


def assign(deal: Deal, owner: str | None, now: datetime) -> Deal:
    """Apply the assignment desk's decision: a rep, or the queue (owner None).

    A deal gets one owner and keeps it; once closed it takes no decision. So a
    decision delivered again, or one older than the owner already set, changes nothing.
    """
    if deal.is_closed or deal.owner is not None:
        return deal
    if owner is None:
        return deal.model_copy(update={"assignment": Assignment.QUEUED})
    return deal.model_copy(update={"owner": owner, "assignment": Assignment.ASSIGNED, "assigned_at": now})


# A deal is one record in a table: Kafka refuses a record over 1 MB and the
# worker could not store it again. These bound it (objections and notes are
# at most 4 KB each) well below that; a CRM's long activity log belongs elsewhere.
MAX_OBJECTIONS = 50
MAX_CONTACTS = 100
MAX_STAGE_VISITS = 60


def _refuse_if_full(entries: Sized, limit: int, what: str, field: str) -> None:
    if len(entries) >= limit:
        raise Conflict(f"a deal keeps at most {limit} {what}; this one has reached it", field=field)


def _touched(deal: Deal, now: datetime) -> dict[str, object]:
    return {"first_contact_at": deal.first_contact_at or now}


def _enter(deal: Deal, stage: Stage, now: datetime, by: str | None) -> dict[str, object]:
    left = deal.current_visit.model_copy(update={"left_at": now})
    return {
        "stage": stage,
        "stage_entered_at": now,
        "history": [*deal.history[:-1], left, StageVisit(stage=stage, entered_at=now, by=by)],
    }


def _refuse_if_closed(deal: Deal, field: str | None = None) -> None:
    if deal.is_closed:
        raise Conflict(f"deal {deal.deal_id} is {deal.stage}; it takes no more changes", field=field)


def move(
    deal: Deal, to: Stage, now: datetime, proposal: Quote | None = None, *, by: str | None = None
) -> Deal:
    """Forward through the process; objections may send a deal back to presenting.
    `proposal`, when given, is what the rep now offers (it values the pipeline)."""
    _refuse_if_closed(deal, "stage")
    if to in TERMINAL:
        raise Conflict("use POST /deals/{deal_id}/close to win or lose a deal", field="stage")
    here, there = OPEN_STAGES.index(deal.stage), OPEN_STAGES.index(to)
    back_to_presenting = deal.stage is Stage.HANDLING_OBJECTIONS and to is Stage.PRESENTING
    if there <= here and not back_to_presenting:
        raise Conflict(f"deal {deal.deal_id} cannot move from {deal.stage} back to {to}", field="stage")
    _refuse_if_full(deal.history, MAX_STAGE_VISITS, "stage visits", "stage")
    offer = {"proposal": proposal} if proposal is not None else {}
    return deal.model_copy(update={**_enter(deal, to, now, by), **_touched(deal, now), **offer})


def record_objection(
    deal: Deal, objection: str, resolution: str | None, now: datetime, *, by: str | None = None
) -> Deal:
    _refuse_if_closed(deal)
    _refuse_if_full(deal.objections, MAX_OBJECTIONS, "objections", "objection")
    return deal.model_copy(
        update={
            "objections": [
                *deal.objections,
                Objection(objection=objection, resolution=resolution, at=now, by=by),
            ],
            **_touched(deal, now),
        }
    )


def record_contact(
    deal: Deal, channel: ContactChannel, note: str | None, now: datetime, *, by: str | None = None
) -> Deal:
    _refuse_if_closed(deal)
    _refuse_if_full(deal.contacts, MAX_CONTACTS, "contacts", "channel")
    return deal.model_copy(
        update={
            "contacts": [*deal.contacts, Touchpoint(channel=channel, note=note, at=now, by=by)],
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
    by: str | None = None,
) -> tuple[Deal, DealClosed]:
    """Win (lines priced from the catalogue) or lose (with a reason); the event says so."""
    if deal.is_closed:
        raise Conflict(f"deal {deal.deal_id} is already {deal.stage}")
    if outcome is Outcome.WON:
        if lost_reason is not None:
            raise Unprocessable("a won deal has no lost_reason", field="lost_reason")
        if not lines:
            raise Unprocessable("a won deal needs at least one line", field="lines")
        sold = quote(lines, catalog)
        stage, reason = Stage.WON, None
    else:
        if lost_reason is None:
            raise Unprocessable("a lost deal needs a lost_reason", field="lost_reason")
        if lines:
            raise Unprocessable("a lost deal has no lines", field="lines")
        zero = Decimal("0.00")
        sold = Quote(
            lines=[],
            list_amount=zero,
            discount_amount=zero,
            amount=zero,
            currency=catalog.currency,
            catalog_version=catalog.version,
        )
        stage, reason = Stage.LOST, lost_reason
    closed = deal.model_copy(
        update={
            **_enter(deal, stage, now, by),
            **_touched(deal, now),
            "lines": sold.lines,
            "list_amount": sold.list_amount,
            "discount_amount": sold.discount_amount,
            "amount": sold.amount,
            "currency": sold.currency,
            "catalog_version": sold.catalog_version,
            "lost_reason": reason,
            "closed_at": now,
            "closed_by": by,
        }
    )
    event = closed_event(closed)
    return closed, event


def closed_event(deal: Deal) -> DealClosed:
    """The deal.closed a closed deal announced, made from the deal as stored: the
    same content every time, so announcing it again repeats the first."""
    if not deal.is_closed or deal.closed_at is None or deal.amount is None or deal.currency is None:
        raise ValueError(f"deal {deal.deal_id} is not closed")
    return DealClosed(
        deal_id=deal.deal_id,
        lead_id=deal.lead_id,
        campaign_id=deal.campaign_id,
        outcome=Outcome.WON if deal.stage is Stage.WON else Outcome.LOST,
        lost_reason=deal.lost_reason,
        owner=deal.owner,
        customer=Customer(company=deal.company, contact=deal.contact),
        lines=[line.as_event_line() for line in deal.lines],
        amount=deal.amount,
        currency=deal.currency,
        opened_at=deal.opened_at,
        first_contact_at=deal.first_contact_at,
        closed_at=deal.closed_at,
        closed_by=deal.closed_by,
    )


def updated_event(before: Deal | None, after: Deal, sla: timedelta) -> tuple[DealUpdated, str] | None:
    """The deal.updated that going from `before` (None: the deal is new) to `after`
    announces, with what it happens once for (its id derives from that); None when
    nothing a subscriber follows changed. A close is announced by deal.closed.

    Made from the deals alone, so a command applied again to the same stored deal
    announces the same event under the same id."""
    if after.is_closed:
        return None
    changes: list[DealChange] = []
    if before is None:
        changes.append(DealChange.OPENED)
    elif before.owner is None and after.owner is not None:
        changes.append(DealChange.ASSIGNED)
    moved = before is not None and len(after.history) > len(before.history)
    if moved:
        changes.append(DealChange.STAGE_CHANGED)
    if after.first_contact_at is not None and (before is None or before.first_contact_at is None):
        changes.append(DealChange.FIRST_CONTACT)
    if not changes:
        return None
    # A deal is opened, assigned and first contacted once; each move is a new stage
    # visit, numbered by its place in the deal's history.
    once = f"{after.deal_id}:stage:{len(after.history)}" if moved else f"{after.deal_id}:{changes[0]}"
    event = DealUpdated(
        deal_id=after.deal_id,
        lead_id=after.lead_id,
        campaign_id=after.campaign_id,
        changes=changes,
        stage=after.stage,
        previous_stage=after.history[-2].stage if moved else None,
        owner=after.owner,
        opened_at=after.opened_at,
        stage_entered_at=after.stage_entered_at,
        first_contact_at=after.first_contact_at,
        follow_up_due_at=after.opened_at + sla,
        amount=None if after.proposal is None else after.proposal.amount,
        currency=None if after.proposal is None else after.proposal.currency,
        updated_at=_updated_at(before, after, moved),
        by=after.current_visit.by if moved else None,
    )
    return event, once


def _updated_at(before: Deal | None, after: Deal, moved: bool) -> datetime:
    if before is None:
        return after.opened_at
    if moved:
        return after.stage_entered_at
    if before.owner is None and after.owner is not None and after.assigned_at is not None:
        return after.assigned_at
    return after.first_contact_at or after.stage_entered_at


def last_update(deal: Deal, sla: timedelta) -> tuple[DealUpdated, str] | None:
    """The deal.updated of `deal`'s latest stage move, rebuilt from the stored deal:
    what a move command applied again announces again (see handlers.move_stage)."""
    if len(deal.history) < 2 or deal.is_closed:
        return None
    # The move was the first contact if the deal was first touched when it moved.
    contacted = None if deal.first_contact_at == deal.stage_entered_at else deal.first_contact_at
    before = deal.model_copy(update={"history": deal.history[:-1], "first_contact_at": contacted})
    return updated_event(before, deal, sla)
