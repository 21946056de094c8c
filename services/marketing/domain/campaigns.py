"""Campaigns: where leads come from, what they cost, whom they target."""

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.events import Channel
from schemas.money import Amount, Currency


class Budget(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Amount = Field(description="Decimal string, e.g. '5000.00'")
    currency: Currency


class SizeRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    min: int | None = Field(default=None, ge=1)
    max: int | None = Field(default=None, ge=1)

    def contains(self, size: int) -> bool:
        return (self.min is None or size >= self.min) and (self.max is None or size <= self.max)


class Target(BaseModel):
    """The segment a campaign aims at; empty lists mean 'any'."""

    model_config = ConfigDict(frozen=True)

    industries: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    company_size: SizeRange | None = None


class Campaign(BaseModel):
    model_config = ConfigDict(frozen=True)

    campaign_id: str
    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    budget: Budget
    starts_on: date
    ends_on: date
    target: Target = Field(default_factory=Target)
    created_at: AwareDatetime

    @model_validator(mode="after")
    def _dates_in_order(self) -> "Campaign":
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self
