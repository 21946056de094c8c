"""The Lead and what happens to it: capture, engagement, the sales outcome."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import (
    Channel,
    Company,
    Contact,
    DealClosed,
    Intent,
    LeadCreated,
    LeadQualified,
    LostReason,
    Outcome,
    ScoreReason,
)
from schemas.money import Amount, Currency
from services.marketing.domain import capture as captures
from services.marketing.domain.activities import Activity, ActivityType
from services.marketing.domain.attribution import NO_CAMPAIGN, Touches, touched
from services.marketing.domain.campaigns import Campaign, Target
from services.marketing.domain.capture import Capture
from services.marketing.domain.journey import Journey, with_close
from services.marketing.domain.qualification import Assessment, Prospect, Verdict, assess
from services.marketing.domain.rules import RuleSet
from services.runtime.errors import Conflict

# Old activities have decayed to nothing; keep a lead's history bounded.
MAX_ACTIVITIES = 200
# A command is redelivered within the few that follow it, if at all.
MAX_APPLIED_COMMANDS = 50


class LeadStatus(StrEnum):
    NEW = "new"
    NURTURING = "nurturing"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    WON = "won"
    LOST = "lost"
    RECYCLED = "recycled"  # sales sent it back: not a real lead


# Statuses in which marketing still decides; later ones belong to sales' outcome.
OPEN = {LeadStatus.NEW, LeadStatus.NURTURING, LeadStatus.DISQUALIFIED}


class Lead(BaseModel):
    # Frozen: its table hands one decoded value to a handler and to the tallies
    # (services.runtime.tables); every change is a model_copy.
    model_config = ConfigDict(frozen=True)

    lead_id: str
    campaign_id: str | None
    channel: Channel
    contact: Contact
    company: Company
    consent: bool
    intent: Intent | None
    status: LeadStatus
    score: int = 0
    threshold: int = 0
    reasons: list[ScoreReason] = Field(default_factory=list)
    disqualified_by: list[str] = Field(default_factory=list)
    rules_version: str = ""
    activities: list[Activity] = Field(default_factory=list)
    captures: int = 1
    # Captures of this person after the first, by the campaign they came through
    # (a duplicate capture counts there; campaigns are few and staff-made).
    recaptures: dict[str, int] = Field(default_factory=dict)
    captured_at: AwareDatetime
    updated_at: AwareDatetime
    qualified_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    deal_id: str | None = None
    lost_reason: LostReason | None = None
    # The won deal's amount: the lead's revenue for its campaign.
    won_amount: Amount | None = None
    won_currency: Currency | None = None
    # The target segment of the lead's campaign, as it was at capture (campaigns do
    # not change): fit is scored against it on this lead's partition, without
    # reading another partition's state.
    campaign_target: Target | None = None
    # The latest commands applied to this lead: a redelivered one changes nothing.
    applied_commands: list[str] = Field(default_factory=list)
    # The capture command that created the lead: its redelivery announces it again.
    captured_by: str | None = None
    # What became of it after the handover, from sales' and orders' events (journey.py).
    journey: Journey | None = None
    # The campaigns that reached it, for attribution (attribution.py); None on a lead
    # stored before touches were kept (see `touches_of`).
    touches: Touches | None = None

    def applied(self, command_id: str) -> "Lead":
        return self.model_copy(
            update={"applied_commands": [*self.applied_commands, command_id][-MAX_APPLIED_COMMANDS:]}
        )

    def touches_of(self) -> Touches:
        """Its touches; for a lead stored before they were kept, its capture's campaign
        and its recaptures (in an order unknown: the capture's campaign first and last)."""
        if self.touches is not None:
            return self.touches
        first = self.campaign_id or NO_CAMPAIGN
        counts = dict(self.recaptures)
        counts[first] = counts.get(first, 0) + 1
        return Touches(first=first, last=first, counts=counts)

    def prospect(self) -> Prospect:
        return Prospect(
            contact=self.contact,
            company=self.company,
            consent=self.consent,
            intent=self.intent,
            activities=tuple(self.activities),
            target=self.campaign_target,
        )


@dataclass(frozen=True)
class Change:
    """A lead after a step, and what the step publishes."""

    lead: Lead
    before: LeadStatus | None = None  # None: the lead is new
    created: LeadCreated | None = None
    qualified: LeadQualified | None = None
    duplicate: bool = False
    # The command had been applied already: nothing changed. `created` and
    # `qualified` then repeat what it announced, identical (see `replay`).
    replayed: bool = False

    @property
    def status_changed(self) -> bool:
        return self.before is not self.lead.status


def capture(
    existing: Lead | None,
    lead_id: str,
    data: Capture,
    campaign: Campaign | None,
    rules: RuleSet,
    now: datetime,
    command_id: str,
) -> Change:
    """A capture of a person: a new lead, or engagement on the lead they already are.

    `campaign` is the one the capture names (None: none, or none by that id). A
    lead stays with the campaign of its first capture. Refused as a whole
    (CaptureRefused) before anything changes when it cannot be accepted."""
    if existing is not None and command_id in existing.applied_commands:
        return replay(existing, command_id, data)  # whatever the rules say now
    captures.check(data, campaign, rules)
    if existing is not None:
        # The same person again: engagement on the lead we have, not a second lead.
        recaptures = dict(existing.recaptures)
        if data.campaign_id is not None:
            recaptures[data.campaign_id] = recaptures.get(data.campaign_id, 0) + 1
        engaged = existing.model_copy(
            update={
                "captures": existing.captures + 1,
                "recaptures": recaptures,
                "touches": touched(existing.touches_of(), data.campaign_id or NO_CAMPAIGN),
                "intent": data.intent or existing.intent,
                "consent": existing.consent or data.consent,
            }
        ).applied(command_id)
        change = _engage(existing, engaged, Activity(type=ActivityType.RECAPTURE, at=now), rules, now)
        return Change(lead=change.lead, before=existing.status, qualified=change.qualified, duplicate=True)
    created = created_event(lead_id, data, now)
    lead = Lead(
        **dict(created),  # the lead starts as what lead.created says of it
        status=LeadStatus.NEW,
        updated_at=now,
        campaign_target=campaign.target if campaign else None,
        captured_by=command_id,
        touches=touched(None, data.campaign_id or NO_CAMPAIGN),
    ).applied(command_id)
    lead, qualified = _reassess(lead, rules, now)
    return Change(lead=lead, before=None, created=created, qualified=qualified)


def record_activity(lead: Lead, activity: Activity, rules: RuleSet, now: datetime, command_id: str) -> Change:
    if command_id in lead.applied_commands:
        return replay(lead, command_id)
    return _engage(lead, lead.applied(command_id), activity, rules, now)


def _engage(
    before: Lead,
    lead: Lead,
    activity: Activity,
    rules: RuleSet,
    now: datetime,
) -> Change:
    activities = [*lead.activities, activity][-MAX_ACTIVITIES:]
    updates: dict[str, object] = {"activities": activities, "updated_at": now}
    if activity.campaign_id is not None:
        updates["touches"] = touched(lead.touches_of(), activity.campaign_id)
    if activity.type is ActivityType.UNSUBSCRIBE:
        updates["consent"] = False
    if activity.type is ActivityType.DEMO_REQUEST and lead.intent is None:
        updates["intent"] = Intent.DEMO_REQUEST
    lead = lead.model_copy(update=updates)
    if lead.status not in OPEN:
        return Change(lead=lead, before=before.status)
    lead, qualified = _reassess(lead, rules, now)
    return Change(lead=lead, before=before.status, qualified=qualified)


def _reassess(lead: Lead, rules: RuleSet, now: datetime) -> tuple[Lead, LeadQualified | None]:
    result: Assessment = assess(lead.prospect(), rules, now)
    status = {
        Verdict.QUALIFIED: LeadStatus.QUALIFIED,
        Verdict.NURTURING: LeadStatus.NURTURING,
        Verdict.DISQUALIFIED: LeadStatus.DISQUALIFIED,
    }[result.verdict]
    lead = lead.model_copy(
        update={
            "status": status,
            "score": result.score,
            "threshold": result.threshold,
            "reasons": list(result.reasons),
            "disqualified_by": list(result.disqualified_by),
            "rules_version": result.rules_version,
        }
    )
    if status is not LeadStatus.QUALIFIED:
        return lead, None
    # Qualified once (QUALIFIED is not OPEN, so never reassessed): the handover to sales.
    lead = lead.model_copy(update={"qualified_at": now})
    return lead, qualified_event(lead)


def created_event(lead_id: str, data: Capture, captured_at: datetime) -> LeadCreated:
    return LeadCreated(
        lead_id=lead_id,
        campaign_id=data.campaign_id,
        channel=data.channel,
        contact=data.contact,
        company=data.company,
        consent=data.consent,
        intent=data.intent,
        captured_at=captured_at,
    )


def qualified_event(lead: Lead) -> LeadQualified:
    """The handover of a qualified lead, from the lead as stored: a qualified lead
    is never assessed again, so its score, reasons and contact stay what they were."""
    if lead.qualified_at is None:
        raise ValueError(f"lead {lead.lead_id} is not qualified")
    return LeadQualified(
        lead_id=lead.lead_id,
        campaign_id=lead.campaign_id,
        score=lead.score,
        threshold=lead.threshold,
        reasons=lead.reasons,
        contact=lead.contact,
        company=lead.company,
        qualified_at=lead.qualified_at,
    )


def replay(lead: Lead, command_id: str, data: Capture | None = None) -> Change:
    """A command applied already, delivered again: nothing changes, and what it may
    have announced is announced again, identical. Its events may have died in the
    producer's buffer with the worker while the lead reached its changelog, and
    nothing else would ever send them. The capture that created the lead repeats
    lead.created (from its own data, as the first time); any command of a
    qualified lead repeats lead.qualified. Subscribers drop the copies by id."""
    created = None
    if data is not None and lead.captured_by == command_id:
        created = created_event(lead.lead_id, data, lead.captured_at)
    qualified = None if lead.qualified_at is None else qualified_event(lead)
    return Change(
        lead=lead,
        before=lead.status,
        created=created,
        qualified=qualified,
        duplicate=data is not None and created is None,
        replayed=True,
    )


def close_loop(lead: Lead, deal: DealClosed) -> Change:
    """Sales' verdict on the lead comes back: won, lost, or not a real lead."""
    if lead.closed_at is not None and lead.deal_id == deal.deal_id:
        return Change(lead=lead, before=lead.status, replayed=True)  # the same outcome again
    if lead.closed_at is not None:
        raise Conflict(f"lead {lead.lead_id} was already closed by deal {lead.deal_id}")
    if deal.outcome is Outcome.WON:
        status = LeadStatus.WON
    elif deal.lost_reason is LostReason.NOT_A_REAL_LEAD:
        status = LeadStatus.RECYCLED
    else:
        status = LeadStatus.LOST
    closed = lead.model_copy(
        update={
            "status": status,
            "deal_id": deal.deal_id,
            "lost_reason": deal.lost_reason,
            "closed_at": deal.closed_at,
            "updated_at": deal.closed_at,
            "won_amount": deal.amount if deal.outcome is Outcome.WON else None,
            "won_currency": deal.currency if deal.outcome is Outcome.WON else None,
            "journey": with_close(lead.journey, deal),
        }
    )
    return Change(lead=closed, before=lead.status)


def follow(lead: Lead, journey: Journey) -> Lead | None:
    """The lead with its journey so far; None when that changes nothing (an event again)."""
    if journey == lead.journey:
        return None
    return lead.model_copy(update={"journey": journey})
