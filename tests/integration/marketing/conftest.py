"""Talking to real marketing workers: campaigns, captures, activities, performance."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.envelope import CONTENT_TYPE, new_event
from schemas.events import Company, Contact, Customer, DealClosed, DealLine, LostReason, Outcome
from services.marketing.domain.identity import lead_id_for
from services.marketing.settings import MarketingSettings
from tests.system import api, post, produce

NAMESPACE = MarketingSettings().id_namespace


def lead_id_of(email: str) -> str:
    return lead_id_for(email, NAMESPACE)


def create_campaign(
    url: str, name: str, budget: str = "10000.00", currency: str = "EUR", **extra: Any
) -> str:
    body = {
        "name": name,
        "channel": "event",
        "budget": {"amount": budget, "currency": currency},
        "starts_on": "2026-03-01",
        "ends_on": "2026-03-31",
        **extra,
    }
    answer = api.post(f"{url}/campaigns", json=body, timeout=20)
    assert answer.status_code == 201, answer.text
    campaign_id: str = answer.json()["campaign_id"]
    return campaign_id


def lead_body(email: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "event",
        "campaign_id": None,
        "contact": {"email": email, "name": "Ana Ruiz", "title": "IT Manager", "phone": "+49 30 1234"},
        "company": {"name": "Acme", "industry": "software", "size": 120, "country": "DE"},
        "consent": True,
        "intent": None,
    }
    return body | overrides


def capture(url: str, email: str, **overrides: Any) -> dict[str, Any]:
    answer = post(f"{url}/leads", lead_body(email, **overrides))
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


def engage(url: str, lead_id: str, activity: str) -> dict[str, Any]:
    answer = post(f"{url}/leads/{lead_id}/activities", {"type": activity})
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


def lead(url: str, lead_id: str) -> dict[str, Any]:
    answer = api.get(f"{url}/leads/{lead_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def performance(url: str, campaign_id: str) -> dict[str, Any]:
    answer = api.get(f"{url}/campaigns/{campaign_id}/performance", timeout=10)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def close_deal(
    lead_id: str,
    campaign_id: str | None,
    outcome: Outcome,
    *,
    lost_reason: LostReason | None = None,
    lines: tuple[tuple[str, int, str], ...] = (),
    currency: str = "EUR",
) -> None:
    """Put a deal.closed on the topic as sales would, in a fresh envelope."""
    deal_lines = [DealLine(sku=s, name=s, quantity=q, unit_price=Decimal(p)) for s, q, p in lines]
    now = datetime.now(UTC)
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id=campaign_id,
        outcome=outcome,
        lost_reason=lost_reason,
        owner="rep-test",
        customer=Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana")),
        lines=deal_lines,
        amount=sum((line.unit_price * line.quantity for line in deal_lines), Decimal("0.00")),
        currency=currency,
        opened_at=now,
        first_contact_at=now,
        closed_at=now,
    )
    event = new_event(data, source="/leadflow/sales", subject=lead_id)
    produce("deal.closed", lead_id, event.to_json(), [("content-type", CONTENT_TYPE.encode())])


def metric(url: str, name: str, **labels: str) -> float:
    """A sample's value in the worker's /metrics (0 when absent)."""
    text = api.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return 0.0
