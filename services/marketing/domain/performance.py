"""Campaign performance: the closed loop from what a campaign cost to the leads,
MQLs and won revenue it brought.

What counts, as decided for Leadflow:
- Spend is the campaign's budget. Leadflow tracks no invoices, so the budget is
  what the campaign costs, from its first lead on.
- Attribution is first touch: a lead belongs to the campaign it was first captured
  through. A person captured again through any campaign is a duplicate capture
  there, not a lead.
- leads: new leads of the campaign. qualified: leads that became marketing
  qualified (handed to sales), once each, whatever happened to them later.
  disqualified: leads disqualified now (one who later gives consent leaves it).
- deals won / lost: sales' outcomes for the campaign's leads; `not_a_real_lead`
  counts the lost ones sales sent back as never having been leads.
- revenue: the amounts of won deals, kept per currency.
- attributed revenue: won revenue credited to the campaigns each won lead touched,
  under the model asked for (first touch, last touch, linear, U-shaped; see
  attribution.py), with its ROI. Over all campaigns (and captures through none)
  each model adds up to the won revenue; first touch is `revenue`.
- ROI = (revenue - spend) / spend. Leadflow has no exchange rates and does not
  guess one: when any revenue is in another currency than the budget, ROI is
  None and `roi_note` says why; revenue is still reported per currency.
- cost per lead = spend / leads, cost per won deal = spend / deals won,
  lead-to-MQL = qualified / leads, MQL-to-won = deals won / qualified.
  Each is None where it is undefined (nothing to divide by).
- Decimal throughout: money to cents and rates to 4 places, rounding half to even.

The counts are what the campaign's leads are now, not a stream of deltas: each
lead contributes to its campaign (one lead, qualified once it was, disqualified
while it is, its deal's outcome and won amount) and to the campaigns it was
captured through again (duplicate captures). A worker keeps the sums of its own
leads as they are written, and a read adds up every worker's sums. Counting a
state instead of its changes is idempotent by construction: a redelivered event
that changes no lead changes no count, however long after the first copy it comes,
and there is no per-campaign value for every lead to rewrite.
"""

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from schemas.events import Channel
from schemas.money import Amount, Currency
from services.marketing.domain.attribution import Model, credited
from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.leads import Lead, LeadStatus

CENTS = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")

Ratio = Annotated[
    Decimal,
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["0.4400"]}),
]

COUNTED = (
    "leads",
    "duplicate_captures",
    "qualified",
    "disqualified",
    "deals_won",
    "deals_lost",
    "not_a_real_lead",
)
REVENUE = "revenue"
ATTRIBUTED = "attributed"


class CampaignCounts(BaseModel):
    """A campaign's counts over some of its leads. Counts over different leads
    (two workers' partitions) add up to the counts over both."""

    leads: int = 0
    duplicate_captures: int = 0
    qualified: int = 0
    disqualified: int = 0
    deals_won: int = 0
    deals_lost: int = 0
    not_a_real_lead: int = 0
    revenue: dict[Currency, Amount] = Field(default_factory=dict)
    # Won revenue credited to the campaign, by attribution model and currency.
    attributed: dict[Model, dict[Currency, Amount]] = Field(default_factory=dict)
    # When one of these leads last changed.
    updated_at: AwareDatetime | None = None

    def __add__(self, other: "CampaignCounts") -> "CampaignCounts":
        revenue = dict(self.revenue)
        for currency, amount in other.revenue.items():
            revenue[currency] = revenue.get(currency, Decimal(0)) + amount
        attributed = {model: dict(amounts) for model, amounts in self.attributed.items()}
        for model, amounts in other.attributed.items():
            mine = attributed.setdefault(model, {})
            for currency, amount in amounts.items():
                mine[currency] = mine.get(currency, Decimal(0)) + amount
        times = [t for t in (self.updated_at, other.updated_at) if t is not None]
        return CampaignCounts(
            **{name: getattr(self, name) + getattr(other, name) for name in COUNTED},
            revenue=revenue,
            attributed=attributed,
            updated_at=max(times, default=None),
        )


def contribution(lead: Lead) -> dict[Hashable, int | Decimal]:
    """What `lead` adds to campaign counts, keyed (campaign_id, count) and
    (campaign_id, "revenue", currency)."""
    adds: dict[Hashable, int | Decimal] = {}
    for through, captures in lead.recaptures.items():
        adds[(through, "duplicate_captures")] = captures
    if lead.status is LeadStatus.WON and lead.won_amount is not None and lead.won_currency is not None:
        touches = lead.touches_of()
        for model in Model:
            # NO_CAMPAIGN ("") too: over every campaign and it, each model adds up to the won revenue.
            for campaign, amount in credited(touches, lead.won_amount, model).items():
                adds[(campaign, ATTRIBUTED, str(model), lead.won_currency)] = amount
    campaign_id = lead.campaign_id
    if campaign_id is None:
        return adds
    adds[(campaign_id, "leads")] = 1
    if lead.qualified_at is not None:
        adds[(campaign_id, "qualified")] = 1
    match lead.status:
        case LeadStatus.DISQUALIFIED:
            adds[(campaign_id, "disqualified")] = 1
        case LeadStatus.WON:
            adds[(campaign_id, "deals_won")] = 1
            if lead.won_amount is not None and lead.won_currency is not None:
                adds[(campaign_id, REVENUE, lead.won_currency)] = lead.won_amount
        case LeadStatus.LOST:
            adds[(campaign_id, "deals_lost")] = 1
        case LeadStatus.RECYCLED:
            adds[(campaign_id, "deals_lost")] = 1
            adds[(campaign_id, "not_a_real_lead")] = 1
    return adds


def last_change(lead: Lead) -> dict[Hashable, datetime]:
    """When `lead` last changed, for each campaign it counts in."""
    campaigns: Iterable[str | None] = (lead.campaign_id, *lead.recaptures)
    return {campaign_id: lead.updated_at for campaign_id in campaigns if campaign_id is not None}


def counts_over(campaign_id: str, leads: Iterable[Lead]) -> CampaignCounts:
    """A campaign's counts over `leads`, summed at once: what a worker's tally holds
    for it, kept as leads are written, when `leads` are that worker's."""
    totals: Counter[Hashable] = Counter()
    latest: dict[Hashable, datetime] = {}
    for lead in leads:
        totals.update(contribution(lead))
        for name, at in last_change(lead).items():
            latest[name] = max(at, latest.get(name, at))
    return counts_of(campaign_id, totals, latest)


def counts_of(
    campaign_id: str, totals: Mapping[Hashable, int | Decimal], latest: Mapping[Hashable, datetime]
) -> CampaignCounts:
    """One campaign's counts out of the sums of `contribution` and the latest `last_change`."""
    counts: dict[str, int] = {}
    revenue: dict[str, Decimal] = {}
    attributed: dict[str, dict[str, Decimal]] = {}
    for key, amount in totals.items():
        match key:
            case (str() as campaign, "attributed", str() as model, str() as currency) if (
                campaign == campaign_id
            ):
                attributed.setdefault(model, {})[currency] = Decimal(amount)
            case (str() as campaign, str() as name) if campaign == campaign_id:
                counts[name] = int(amount)
            case (str() as campaign, "revenue", str() as currency) if campaign == campaign_id:
                revenue[currency] = Decimal(amount)
    return CampaignCounts.model_validate(
        {**counts, "revenue": revenue, "attributed": attributed, "updated_at": latest.get(campaign_id)}
    )


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Amount
    currency: Currency


class Performance(BaseModel):
    """What GET /campaigns/{campaign_id}/performance answers."""

    campaign_id: str
    name: str
    channel: Channel
    spend: Money = Field(description="The campaign's budget: what it costs")
    leads: int
    duplicate_captures: int
    qualified: int
    disqualified: int
    deals_won: int
    deals_lost: int
    not_a_real_lead: int
    revenue: list[Money] = Field(description="Won deals' amounts, one entry per currency")
    cost_per_lead: Money | None
    cost_per_won_deal: Money | None
    roi: Ratio | None = Field(description="(revenue - spend) / spend, e.g. '0.4400' for 44 %")
    roi_note: str | None = Field(description="Why roi is None, when it is")
    lead_to_mql: Ratio | None
    mql_to_won: Ratio | None
    attribution: Model = Field(
        description="The model attributed_revenue follows (query parameter attribution)"
    )
    attributed_revenue: list[Money] = Field(
        description="Won revenue credited to this campaign among all it touched, one entry per currency"
    )
    attributed_roi: Ratio | None = Field(description="ROI on the attributed revenue")
    attributed_roi_note: str | None
    updated_at: AwareDatetime | None


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, ROUND_HALF_EVEN)


def cost_per(spend: Money, count: int) -> Money | None:
    if count == 0:
        return None
    return Money(amount=(spend.amount / count).quantize(CENTS, ROUND_HALF_EVEN), currency=spend.currency)


def roi(spend: Money, revenue: dict[str, Decimal]) -> tuple[Decimal | None, str | None]:
    """ROI and, when it is None, why."""
    foreign = sorted(c for c, amount in revenue.items() if c != spend.currency and amount != 0)
    if foreign:
        return None, (
            f"revenue in {', '.join(foreign)} cannot be set against a budget in {spend.currency} "
            "without exchange rates; see revenue per currency"
        )
    if spend.amount == 0:
        return None, "the campaign has no spend to return on"
    earned = revenue.get(spend.currency, Decimal(0))
    return ratio(earned - spend.amount, spend.amount), None


def performance(campaign: Campaign, counts: CampaignCounts, model: Model = Model.FIRST_TOUCH) -> Performance:
    spend = Money(amount=campaign.budget.amount, currency=campaign.budget.currency)
    campaign_roi, note = roi(spend, counts.revenue)
    attributed = counts.attributed.get(model, {})
    attributed_roi, attributed_note = roi(spend, attributed)
    return Performance(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        channel=campaign.channel,
        spend=spend,
        leads=counts.leads,
        duplicate_captures=counts.duplicate_captures,
        qualified=counts.qualified,
        disqualified=counts.disqualified,
        deals_won=counts.deals_won,
        deals_lost=counts.deals_lost,
        not_a_real_lead=counts.not_a_real_lead,
        revenue=[Money(amount=a, currency=c) for c, a in sorted(counts.revenue.items())],
        cost_per_lead=cost_per(spend, counts.leads),
        cost_per_won_deal=cost_per(spend, counts.deals_won),
        roi=campaign_roi,
        roi_note=note,
        lead_to_mql=ratio(counts.qualified, counts.leads),
        mql_to_won=ratio(counts.deals_won, counts.qualified),
        attribution=model,
        attributed_revenue=[Money(amount=a, currency=c) for c, a in sorted(attributed.items())],
        attributed_roi=attributed_roi,
        attributed_roi_note=attributed_note,
        updated_at=counts.updated_at,
    )
