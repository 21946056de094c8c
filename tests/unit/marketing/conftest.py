"""Builders for the marketing domain's unit tests."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from schemas.events import Channel, Company, Contact, Intent
from services.marketing.domain.campaigns import Budget, Campaign, Target
from services.marketing.domain.capture import Capture
from services.marketing.domain.rules import DEFAULT_RULES_FILE, RuleSet

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return RuleSet.load(DEFAULT_RULES_FILE)


def campaign(
    campaign_id: str = "expo", budget: str = "10000.00", currency: str = "EUR", target: Target | None = None
) -> Campaign:
    return Campaign(
        campaign_id=campaign_id,
        name="Expo 2026",
        channel=Channel.EVENT,
        budget=Budget(amount=Decimal(budget), currency=currency),
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        target=target or Target(),
        created_at=NOW,
    )


def capture(
    email: str = "ana.ruiz@acme-industries.com",
    *,
    channel: Channel = Channel.EVENT,
    campaign_id: str | None = "expo",
    title: str | None = "IT Manager",
    industry: str | None = "software",
    size: int | None = 120,
    country: str | None = "DE",
    consent: bool = True,
    intent: Intent | None = None,
) -> Capture:
    return Capture(
        channel=channel,
        campaign_id=campaign_id,
        contact=Contact(email=email, name="Ana Ruiz", title=title),
        company=Company(name="Acme", industry=industry, size=size, country=country),
        consent=consent,
        intent=intent,
    )
