"""Marketing's HTTP request and response bodies."""

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, model_validator

from schemas.events import Channel, Company, Intent, ScoreReason
from services.marketing.domain.activities import ActivityType
from services.marketing.domain.campaigns import Budget, Target
from services.marketing.domain.leads import LeadStatus


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    budget: Budget
    starts_on: date
    ends_on: date
    target: Target = Field(default_factory=Target)

    @model_validator(mode="after")
    def _dates_in_order(self) -> "CampaignRequest":
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr = Field(max_length=254)
    name: str = Field(min_length=1, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50, pattern=r"^[0-9+()./ -]{3,50}$")


class LeadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    campaign_id: str | None = Field(default=None, max_length=64)
    contact: ContactIn
    company: Company
    consent: bool
    intent: Intent | None = None


class LeadAccepted(BaseModel):
    lead_id: str
    status: LeadStatus
    duplicate: bool


class ActivityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ActivityType = Field(description="Engagement type (recapture is recorded by the service)")

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
