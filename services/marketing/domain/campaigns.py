"""Campaigns: where leads come from, what they cost, whom they target."""

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.events import Channel
from schemas.money import Amount, Currency
from services.marketing.domain.rules import industry_key


class Budget(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Amount = Field(ge=0, description="Decimal string, e.g. '5000.00'; what the campaign costs")
    currency: Currency


class SizeRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    min: int | None = Field(default=None, ge=1)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _in_order(self) -> "SizeRange":
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError("company_size max must not be below min")
        return self

    def contains(self, size: int) -> bool:
        return (self.min is None or size >= self.min) and (self.max is None or size <= self.max)


class Target(BaseModel):
    """The segment a campaign aims at; empty lists mean 'any'."""

    model_config = ConfigDict(frozen=True)

    industries: list[str] = Field(default_factory=list, max_length=50)
    countries: list[str] = Field(default_factory=list, max_length=250)
    company_size: SizeRange | None = None

    @field_validator("industries")
    @classmethod
    def _industry_keys(cls, industries: list[str]) -> list[str]:
        return [industry_key(i) for i in industries]

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, countries: list[str]) -> list[str]:
        codes = [c.strip().upper() for c in countries]
        bad = [c for c in codes if len(c) != 2 or not c.isascii() or not c.isalpha()]
        if bad:
            raise ValueError(f"countries must be ISO 3166-1 alpha-2 codes such as 'DE', not {bad}")
        return codes

    def has_industry(self, industry: str | None) -> bool:
        return bool(industry) and industry_key(industry or "") in self.industries

    def has_country(self, country: str | None) -> bool:
        return country is not None and country.upper() in self.countries


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
