"""Deals and catalogues for the sales unit tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.events import Company, Contact, LeadQualified, ScoreReason
from services.sales.domain.catalog import Catalog, Product
from services.sales.domain.deals import Deal, open_deal

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def qualified(lead_id: str = "lead-1", country: str | None = "DE") -> LeadQualified:
    return LeadQualified(
        lead_id=lead_id,
        campaign_id="cmp-1",
        score=72,
        threshold=60,
        reasons=[ScoreReason(rule="intent.demo_request", points=40)],
        contact=Contact(email="ana@acme.io", name="Ana Ruiz", title="CTO"),
        company=Company(name="Acme", industry="software", size=120, country=country),
        qualified_at=T0 - timedelta(minutes=1),
    )


def a_deal(lead_id: str = "lead-1", country: str | None = "DE") -> Deal:
    return open_deal(qualified(lead_id, country), now=T0)


CATALOG = Catalog(
    version="test-1",
    currency="EUR",
    max_discount_percent=Decimal("15"),
    products=[
        Product(sku="CORE", name="Core", unit_price=Decimal("12000.00"), currency="EUR"),
        Product(sku="SEAT", name="Seat", unit_price=Decimal("480.00"), currency="EUR"),
        Product(sku="ODD", name="Odd price", unit_price=Decimal("99.99"), currency="EUR"),
        Product(sku="OLD", name="Retired", unit_price=Decimal("9000.00"), currency="EUR", active=False),
    ],
)
