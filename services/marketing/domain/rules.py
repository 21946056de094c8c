"""The qualification rule set: what makes a lead a lead, as data.

Defaults ship in services/marketing/rules/default.yaml; a deployment points
LEADFLOW_RULES_FILE at its own file to change them without code changes.
"""

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import Intent
from services.marketing.domain.activities import ActivityType


class Band(BaseModel):
    """Points for a number (company size) within [min, max]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = 0
    max: int | None = None
    points: int

    def contains(self, value: int) -> bool:
        return value >= self.min and (self.max is None or value <= self.max)


class TitleRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seniority: str
    keywords: list[str]
    points: int


class FitRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    industries: list[str] = Field(default_factory=list, description="Ideal industries")
    industry_points: int = 0
    # A campaign's own target segment counts instead of `industries` where it has one.
    target_industry_points: int = 0
    target_country_points: int = 0
    target_size_points: int = 0
    company_size: list[Band] = Field(default_factory=list)
    titles: list[TitleRule] = Field(default_factory=list)


class EngagementRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: dict[ActivityType, int]
    half_life_days: float = Field(gt=0)
    max_points: int = Field(ge=0)


class Disqualifiers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    require_consent: bool = True
    free_mail_domains: list[str] = Field(default_factory=list)
    disposable_domains: list[str] = Field(default_factory=list)
    competitor_domains: list[str] = Field(default_factory=list)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    threshold: int = Field(gt=0)
    hand_raiser_intents: list[Intent]
    fit: FitRules
    engagement: EngagementRules
    disqualifiers: Disqualifiers

    @model_validator(mode="after")
    def _lower_case_lists(self) -> "RuleSet":
        for domains in (
            self.disqualifiers.free_mail_domains,
            self.disqualifiers.disposable_domains,
            self.disqualifiers.competitor_domains,
            self.fit.industries,
        ):
            domains[:] = [d.lower() for d in domains]
        return self

    @classmethod
    def load(cls, path: Path) -> "RuleSet":
        return cls.model_validate(yaml.safe_load(path.read_text()))


DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "rules" / "default.yaml"
