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
- ROI = (revenue - spend) / spend. Leadflow has no exchange rates and does not
  guess one: when any revenue is in another currency than the budget, ROI is
  None and `roi_note` says why; revenue is still reported per currency.
- cost per lead = spend / leads, cost per won deal = spend / deals won,
  lead-to-MQL = qualified / leads, MQL-to-won = deals won / qualified.
  Each is None where it is undefined (nothing to divide by).
- Decimal throughout: money to cents and rates to 4 places, rounding half to even.

Facts arrive at least once. Each carries an id derived from its cause (the lead
for its capture and qualification, the command for a change of status, the deal
for an outcome), and a tally remembers the ids it counted (the latest
MAX_REMEMBERED; a redelivery comes within far fewer facts than that), so a fact
delivered twice counts once.
"""

from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from schemas.events import Channel, LostReason
from schemas.money import Amount, Currency
from services.marketing.domain.campaigns import Campaign

MAX_REMEMBERED = 1000

CENTS = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")

Ratio = Annotated[
    Decimal,
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["0.4400"]}),
]


class FactKind(StrEnum):
    CAPTURED = "captured"
    DUPLICATE_CAPTURE = "duplicate_capture"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    # A disqualified lead that no longer is (it gave consent, say).
    REINSTATED = "reinstated"
    WON = "won"
    LOST = "lost"


class CampaignFact(BaseModel):
    """Something that happened to one of a campaign's leads, keyed by campaign."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact_id: str = Field(min_length=1)
    campaign_id: str = Field(min_length=1)
    lead_id: str
    kind: FactKind
    at: AwareDatetime
    # For a won deal: its amount in its currency.
    amount: Amount | None = None
    currency: Currency | None = None
    lost_reason: LostReason | None = None


class Tally(BaseModel):
    """A campaign's counts so far, and the facts it counted."""

    campaign_id: str
    leads: int = 0
    duplicate_captures: int = 0
    qualified: int = 0
    disqualified: int = 0
    deals_won: int = 0
    deals_lost: int = 0
    not_a_real_lead: int = 0
    revenue: dict[str, Amount] = Field(default_factory=dict)
    counted: list[str] = Field(default_factory=list)
    updated_at: AwareDatetime | None = None

    def count(self, fact: CampaignFact) -> "Tally | None":
        """This tally with `fact` counted, or None when it was counted already."""
        if fact.fact_id in self.counted:
            return None
        update: dict[str, object] = {
            "counted": [*self.counted, fact.fact_id][-MAX_REMEMBERED:],
            "updated_at": fact.at,
        }
        match fact.kind:
            case FactKind.CAPTURED:
                update["leads"] = self.leads + 1
            case FactKind.DUPLICATE_CAPTURE:
                update["duplicate_captures"] = self.duplicate_captures + 1
            case FactKind.QUALIFIED:
                update["qualified"] = self.qualified + 1
            case FactKind.DISQUALIFIED:
                update["disqualified"] = self.disqualified + 1
            case FactKind.REINSTATED:
                update["disqualified"] = max(self.disqualified - 1, 0)
            case FactKind.WON:
                if fact.amount is None or fact.currency is None:
                    raise ValueError(f"won fact {fact.fact_id} carries no amount and currency")
                revenue = dict(self.revenue)
                revenue[fact.currency] = revenue.get(fact.currency, Decimal(0)) + fact.amount
                update |= {"deals_won": self.deals_won + 1, "revenue": revenue}
            case FactKind.LOST:
                update["deals_lost"] = self.deals_lost + 1
                if fact.lost_reason is LostReason.NOT_A_REAL_LEAD:
                    update["not_a_real_lead"] = self.not_a_real_lead + 1
        return self.model_copy(update=update)


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


def performance(campaign: Campaign, tally: Tally | None) -> Performance:
    tally = tally or Tally(campaign_id=campaign.campaign_id)
    spend = Money(amount=campaign.budget.amount, currency=campaign.budget.currency)
    campaign_roi, note = roi(spend, tally.revenue)
    return Performance(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        channel=campaign.channel,
        spend=spend,
        leads=tally.leads,
        duplicate_captures=tally.duplicate_captures,
        qualified=tally.qualified,
        disqualified=tally.disqualified,
        deals_won=tally.deals_won,
        deals_lost=tally.deals_lost,
        not_a_real_lead=tally.not_a_real_lead,
        revenue=[Money(amount=a, currency=c) for c, a in sorted(tally.revenue.items())],
        cost_per_lead=cost_per(spend, tally.leads),
        cost_per_won_deal=cost_per(spend, tally.deals_won),
        roi=campaign_roi,
        roi_note=note,
        lead_to_mql=ratio(tally.qualified, tally.leads),
        mql_to_won=ratio(tally.deals_won, tally.qualified),
        updated_at=tally.updated_at,
    )
