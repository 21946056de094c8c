"""The Lead and what happens to it: capture, engagement, the sales outcome."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

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
from services.marketing.domain.activities import Activity, ActivityType
from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.qualification import Assessment, Prospect, Verdict, assess
from services.marketing.domain.rules import RuleSet
from services.runtime.errors import Conflict, Unprocessable

# Old activities have decayed to nothing; keep a lead's history bounded.
MAX_ACTIVITIES = 200


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


class Capture(BaseModel):
    """A lead as captured by a form, a list import, a rep at a stand."""

    channel: Channel
    campaign_id: str | None
    contact: Contact
    company: Company
    consent: bool
    intent: Intent | None = None


class Lead(BaseModel):
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
    captured_at: AwareDatetime
    updated_at: AwareDatetime
    qualified_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    deal_id: str | None = None
    lost_reason: LostReason | None = None

    def prospect(self, campaign: Campaign | None) -> Prospect:
        return Prospect(
            contact=self.contact,
            company=self.company,
            consent=self.consent,
            intent=self.intent,
            activities=tuple(self.activities),
            campaign=campaign,
        )


@dataclass(frozen=True)
class Change:
    """A lead after a step, and the events the step publishes."""

    lead: Lead
    created: LeadCreated | None = None
    qualified: LeadQualified | None = None
    duplicate: bool = False


def capture(
    existing: Lead | None,
    lead_id: str,
    data: Capture,
    campaign: Campaign | None,
    rules: RuleSet,
    now: datetime,
) -> Change:
    if data.campaign_id is not None and campaign is None:
        raise Unprocessable(f"unknown campaign {data.campaign_id!r}", field="campaign_id")
    if existing is not None:
        # The same person again: engagement on the lead we have, not a second lead.
        engaged = existing.model_copy(
            update={
                "captures": existing.captures + 1,
                "intent": data.intent or existing.intent,
                "consent": existing.consent or data.consent,
            }
        )
        change = _engage(engaged, Activity(type=ActivityType.RECAPTURE, at=now), campaign, rules, now)
        return Change(lead=change.lead, qualified=change.qualified, duplicate=True)
    lead = Lead(
        lead_id=lead_id,
        campaign_id=data.campaign_id,
        channel=data.channel,
        contact=data.contact,
        company=data.company,
        consent=data.consent,
        intent=data.intent,
        status=LeadStatus.NEW,
        captured_at=now,
        updated_at=now,
    )
    created = LeadCreated(
        lead_id=lead_id,
        campaign_id=data.campaign_id,
        channel=data.channel,
        contact=data.contact,
        company=data.company,
        consent=data.consent,
        intent=data.intent,
        captured_at=now,
    )
    lead, qualified = _reassess(lead, campaign, rules, now)
    return Change(lead=lead, created=created, qualified=qualified)


def record_activity(
    lead: Lead, activity: Activity, campaign: Campaign | None, rules: RuleSet, now: datetime
) -> Change:
    return _engage(lead, activity, campaign, rules, now)


def _engage(
    lead: Lead, activity: Activity, campaign: Campaign | None, rules: RuleSet, now: datetime
) -> Change:
    activities = [*lead.activities, activity][-MAX_ACTIVITIES:]
    updates: dict[str, object] = {"activities": activities, "updated_at": now}
    if activity.type is ActivityType.UNSUBSCRIBE:
        updates["consent"] = False
    if activity.type is ActivityType.DEMO_REQUEST and lead.intent is None:
        updates["intent"] = Intent.DEMO_REQUEST
    lead = lead.model_copy(update=updates)
    if lead.status not in OPEN:
        return Change(lead=lead)
    lead, qualified = _reassess(lead, campaign, rules, now)
    return Change(lead=lead, qualified=qualified)


def _reassess(
    lead: Lead, campaign: Campaign | None, rules: RuleSet, now: datetime
) -> tuple[Lead, LeadQualified | None]:
    result: Assessment = assess(lead.prospect(campaign), rules, now)
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
    # Qualified once: this is the handover to sales.
    lead = lead.model_copy(update={"qualified_at": now})
    return lead, LeadQualified(
        lead_id=lead.lead_id,
        campaign_id=lead.campaign_id,
        score=lead.score,
        threshold=lead.threshold,
        reasons=lead.reasons,
        contact=lead.contact,
        company=lead.company,
        qualified_at=now,
    )


def close_loop(lead: Lead, deal: DealClosed) -> Lead:
    """Sales' verdict on the lead comes back: won, lost, or not a real lead."""
    if lead.closed_at is not None and lead.deal_id == deal.deal_id:
        return lead  # the same outcome delivered again
    if lead.closed_at is not None:
        raise Conflict(f"lead {lead.lead_id} was already closed by deal {lead.deal_id}")
    if deal.outcome is Outcome.WON:
        status = LeadStatus.WON
    elif deal.lost_reason is LostReason.NOT_A_REAL_LEAD:
        status = LeadStatus.RECYCLED
    else:
        status = LeadStatus.LOST
    return lead.model_copy(
        update={
            "status": status,
            "deal_id": deal.deal_id,
            "lost_reason": deal.lost_reason,
            "closed_at": deal.closed_at,
            "updated_at": deal.closed_at,
        }
    )
