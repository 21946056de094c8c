"""Marketing's HTTP request and response bodies."""

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from schemas.events import Channel, Company, Contact, Intent, ScoreReason
from schemas.money import Amount
from services.marketing.domain.activities import ActivityType
from services.marketing.domain.attribution import Model
from services.marketing.domain.campaigns import Budget, Target
from services.marketing.domain.capture import Capture
from services.marketing.domain.leads import LeadStatus
from services.marketing.domain.performance import CampaignCounts, Money, Ratio


class BudgetIn(Budget):
    # Bounded as written out: "1E+999999" is a valid decimal a million digits long
    # in the command that creates the campaign, too big for Kafka (a 500 before).
    amount: Amount = Field(
        ge=0,
        lt=Decimal("1e13"),
        decimal_places=4,
        description="Decimal string, e.g. '5000.00'; what the campaign costs",
    )


class TargetIn(Target):
    # Each industry bounded like a lead's company.industry: fifty unbounded strings
    # made a command bigger than Kafka takes (a 500 before).
    industries: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    budget: BudgetIn
    starts_on: date
    ends_on: date
    target: TargetIn = Field(default_factory=TargetIn)

    @model_validator(mode="after")
    def _dates_in_order(self) -> "CampaignRequest":
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


PHONE = re.compile(r"[0-9+()./ -]{3,50}")
COUNTRY = re.compile(r"[A-Z]{2}")


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr = Field(max_length=254)
    name: str = Field(min_length=1, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50, examples=["+49 30 1234 567"])

    _blanks = field_validator("title", "phone", mode="before")(_blank_is_none)

    @field_validator("phone")
    @classmethod
    def _dialable(cls, value: str | None) -> str | None:
        if value is not None and not PHONE.fullmatch(value):
            raise ValueError("phone may hold 3 or more digits, spaces and + ( ) . / - only")
        return value


class CompanyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    industry: str | None = Field(default=None, max_length=100)
    size: int | None = Field(default=None, ge=1, le=10_000_000, description="Number of employees")
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2, e.g. DE", examples=["DE"])

    _blanks = field_validator("industry", "country", mode="before")(_blank_is_none)

    @field_validator("country")
    @classmethod
    def _iso_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.upper()
        if not COUNTRY.fullmatch(code):
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code such as 'DE', not {value!r}")
        return code


class LeadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    campaign_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    contact: ContactIn
    company: CompanyIn
    consent: bool = Field(description="Consent to be contacted; required on channels the rules name")
    intent: Intent | None = None

    def capture(self) -> Capture:
        return Capture(
            channel=self.channel,
            campaign_id=self.campaign_id,
            contact=Contact(**self.contact.model_dump()),
            company=Company(**self.company.model_dump()),
            consent=self.consent,
            intent=self.intent,
        )


class LeadAccepted(BaseModel):
    lead_id: str
    status: LeadStatus
    duplicate: bool


class ActivityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ActivityType = Field(description="Engagement type (recapture is recorded by the service)")
    campaign_id: str | None = Field(
        default=None,
        max_length=100,
        description="The campaign that brought it about, if any: a touch for attribution",
    )

    @model_validator(mode="after")
    def _not_internal(self) -> "ActivityRequest":
        if self.type is ActivityType.RECAPTURE:
            raise ValueError("recapture is recorded by the service itself")
        return self


class ActivityAccepted(BaseModel):
    lead_id: str
    status: LeadStatus
    score: int


class LeadView(BaseModel):
    lead_id: str
    status: LeadStatus
    score: int
    threshold: int
    reasons: list[ScoreReason]
    disqualified_by: list[str]
    rules_version: str
    campaign_id: str | None
    channel: Channel
    captures: int
    captured_at: AwareDatetime
    updated_at: AwareDatetime
    qualified_at: AwareDatetime | None
    closed_at: AwareDatetime | None
    deal_id: str | None
    lost_reason: str | None


class CampaignShare(BaseModel):
    """One worker's part of a campaign's performance: the counts over its leads,
    and the partitions of the leads table they cover (views.py adds them up)."""

    partitions: list[int]
    counts: CampaignCounts


class FunnelShare(BaseModel):
    """One worker's funnel sums and the partitions of the leads table they cover."""

    partitions: list[int]
    sums: list[list[Any]]


class FunnelSources(BaseModel):
    forecast_url: str | None = Field(description="Sales' GET /forecast, for the page; null: not shown")


class AttributionShare(BaseModel):
    """One worker's attributed revenue: (campaign id or "", model, currency, amount)."""

    partitions: list[int]
    credits: list[tuple[str, str, str, str]]


class AttributedCampaign(BaseModel):
    campaign_id: str | None = Field(description="null: captures through no campaign")
    name: str | None = None
    revenue: list[Money] = Field(description="Won revenue credited to it, one entry per currency")
    spend: Money | None = None
    roi: Ratio | None = None
    roi_note: str | None = None


class AttributionView(BaseModel):
    model: Model
    campaigns: list[AttributedCampaign]
    total: list[Money] = Field(description="The won revenue: what the campaigns' entries add up to")
