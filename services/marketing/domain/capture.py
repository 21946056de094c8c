"""A capture: a lead as a form, a list import or a rep at a stand hands it in,
and what makes marketing refuse one outright (before anything is stored).

Refusing is not disqualifying: a refused capture leaves no trace, while a
disqualified lead is kept with its reasons (it may give consent later). Syntax
and lengths are checked at the HTTP boundary; what needs the rules or the
campaigns is checked here.
"""

from dataclasses import dataclass

from pydantic import BaseModel

from schemas.events import Channel, Company, Contact, Intent
from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.rules import RuleSet
from services.runtime.errors import Unprocessable


class Capture(BaseModel):
    channel: Channel
    campaign_id: str | None
    contact: Contact
    company: Company
    consent: bool
    intent: Intent | None = None


@dataclass(frozen=True)
class Problem:
    field: str  # dotted path in the request body, e.g. "contact.email"
    code: str  # a bounded name, also the metrics label
    message: str


class CaptureRefused(Unprocessable):
    """422 with every problem of the capture, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems), field=problems[0].field)
        self.problems = problems

    def to_body(self) -> dict[str, object]:
        return {
            "detail": [
                {"loc": ["body", *p.field.split(".")], "msg": p.message, "type": p.code}
                for p in self.problems
            ]
        }


def problems(data: Capture, campaign: Campaign | None, rules: RuleSet) -> list[Problem]:
    """Why this capture cannot be accepted; empty when it can."""
    found = []
    if data.campaign_id is not None and campaign is None:
        found.append(Problem("campaign_id", "unknown_campaign", f"unknown campaign {data.campaign_id!r}"))
    if not data.consent and data.channel in rules.capture.consent_required_channels:
        found.append(
            Problem(
                "consent",
                "consent_required",
                f"consent is required for leads captured through the {data.channel} channel",
            )
        )
    return found


def check(data: Capture, campaign: Campaign | None, rules: RuleSet) -> None:
    """Raise CaptureRefused when the capture cannot be accepted."""
    found = problems(data, campaign, rules)
    if found:
        raise CaptureRefused(found)
