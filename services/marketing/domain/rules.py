"""The qualification rule set: what makes a lead a lead, as data.

Defaults ship in services/marketing/rules/default.yaml; a deployment points
LEADFLOW_RULES_FILE at its own file to change them without code changes.
"""

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.events import Channel, Intent
from services.marketing.domain.activities import ActivityType


class RulesFileError(Exception):
    """The rules file cannot be read or does not describe a valid rule set."""


def industry_key(industry: str) -> str:
    """'Financial Services', 'financial-services' and 'financial_services' are one industry."""
    return re.sub(r"[\s_-]+", "_", industry.strip().lower())


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

    def matches(self, title: str) -> bool:
        """Whole words only: 'cto' is not in 'Director', 'coo' not in 'Coordinator'."""
        words = title.lower()
        return any(re.search(rf"\b{re.escape(k.lower())}\b", words) for k in self.keywords)


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


class CaptureRules(BaseModel):
    """What a capture must carry to be accepted at all (refused with 422 otherwise)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Channels where the person fills in a form and can give consent there and then.
    consent_required_channels: list[Channel] = Field(default_factory=list)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    threshold: int = Field(gt=0)
    hand_raiser_intents: list[Intent]
    capture: CaptureRules = Field(default_factory=CaptureRules)
    fit: FitRules
    engagement: EngagementRules
    disqualifiers: Disqualifiers

    @model_validator(mode="after")
    def _normalised_lists(self) -> "RuleSet":
        for domains in (
            self.disqualifiers.free_mail_domains,
            self.disqualifiers.disposable_domains,
            self.disqualifiers.competitor_domains,
        ):
            domains[:] = [d.strip().lower() for d in domains]
        self.fit.industries[:] = [industry_key(i) for i in self.fit.industries]
        return self

    @classmethod
    def load(cls, path: Path) -> "RuleSet":
        """Read and check a rules file; a bad one stops the worker with the reason."""
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as unreadable:
            raise RulesFileError(f"cannot read rules file {path}: {unreadable}") from unreadable
        try:
            return cls.model_validate(raw)
        except ValidationError as invalid:
            raise RulesFileError(f"rules file {path} is not a valid rule set:\n{invalid}") from invalid


DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "rules" / "default.yaml"
