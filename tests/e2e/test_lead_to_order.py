"""The whole path through the three running services and the real broker."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.system import Record, Worker, api, eventually, read_topic, unique_email

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"

# The leads these journeys create: the records checked against the schemas are
# theirs, whatever other tests put on the same topics.
JOURNEY_LEADS: set[str] = set()


def capture(marketing: Worker, email: str, **overrides: object) -> dict[str, Any]:
    body = {
        "channel": "web",
        "campaign_id": None,
        "contact": {"email": email, "name": "Ana Ruiz", "title": "CTO", "phone": "+49 30 1234"},
        "company": {"name": "Acme", "industry": "software", "size": 120, "country": "DE"},
        "consent": True,
        "intent": "demo_request",
        **overrides,
    }
    response = api.post(f"{marketing.url}/leads", json=body, timeout=20)
    assert response.status_code == 202, response.text
    JOURNEY_LEADS.add(response.json()["lead_id"])
    return response.json()


def deal_of(sales: Worker, lead_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        items = api.get(f"{sales.url}/deals", params={"lead_id": lead_id}, timeout=10).json()["items"]
        return items[0] if items else None

    return eventually(find)


def test_a_hand_raiser_becomes_an_order(system: dict[str, Worker]) -> None:
    marketing, sales, orders = system["marketing"], system["sales"], system["orders"]
    accepted = capture(marketing, unique_email("ana"))
    assert accepted["status"] == "qualified"
    assert accepted["duplicate"] is False
    lead_id = accepted["lead_id"]

    deal = deal_of(sales, lead_id)
    assert deal["stage"] == "prospecting"
    closed = api.post(
        f"{sales.url}/deals/{deal['deal_id']}/close",
        json={
            "outcome": "won",
            "lines": [{"sku": "LF-CORE", "quantity": 1}, {"sku": "LF-SEAT", "quantity": 5}],
        },
        timeout=20,
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["amount"] == "14400.00"
    assert closed.json()["closed_by"] == "tests"  # the subject of the caller's token
    [announced] = eventually(lambda: [r for r in read_topic("deal.closed") if r.key == lead_id])
    assert announced.value["data"]["closed_by"] == "tests"

    def order() -> dict[str, Any] | None:
        items = api.get(f"{orders.url}/orders", params={"deal_id": deal["deal_id"]}, timeout=10).json()
        return items["items"][0] if items["items"] else None

    made = eventually(order)
    assert made["lead_id"] == lead_id
    assert made["total"] == "14400.00"
    assert made["currency"] == "EUR"
    assert made["status"] == "created"
    confirmed = api.post(
        f"{orders.url}/orders/{made['order_id']}/status", json={"status": "confirmed"}, timeout=20
    )
    assert confirmed.status_code == 200, confirmed.text
    [moved] = eventually(lambda: [r for r in read_topic("order.updated") if r.key == lead_id])
    assert (moved.value["data"]["status"], moved.value["data"]["previous_status"]) == ("confirmed", "created")
    # The outcome flows back to marketing.
    eventually(lambda: api.get(f"{marketing.url}/leads/{lead_id}", timeout=10).json()["status"] == "won")


def test_a_lost_deal_makes_no_order(system: dict[str, Worker]) -> None:
    marketing, sales, orders = system["marketing"], system["sales"], system["orders"]
    lead_id = capture(marketing, unique_email("lost"), intent="contact_sales")["lead_id"]
    deal = deal_of(sales, lead_id)
    lost = api.post(
        f"{sales.url}/deals/{deal['deal_id']}/close",
        json={"outcome": "lost", "lost_reason": "not_a_real_lead"},
        timeout=20,
    )
    assert lost.status_code == 200, lost.text
    eventually(lambda: api.get(f"{marketing.url}/leads/{lead_id}", timeout=10).json()["status"] == "recycled")
    # Orders has seen the deal.closed by the time marketing has (same partition,
    # both consume it), so no order now means none will come.
    eventually(lambda: any(r.key == lead_id for r in read_topic("deal.closed")))
    assert api.get(f"{orders.url}/orders", params={"deal_id": deal["deal_id"]}, timeout=10).json() == {
        "items": [],
        "next_cursor": None,
    }


def _pipeline(sales: Worker) -> tuple[Decimal, Decimal, Decimal]:
    """The forecast's open value, weighted value, and the closing stage's probability."""
    response = api.get(f"{sales.url}/forecast", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    [closing] = [s for s in body["stages"] if s["stage"] == "closing"]
    return (
        sum((Decimal(p["pipeline"]) for p in body["periods"]), Decimal(0)),
        sum((Decimal(p["weighted"]) for p in body["periods"]), Decimal(0)),
        Decimal(closing["probability"]),
    )


def test_a_stage_move_is_published_and_forecast(system: dict[str, Worker]) -> None:
    marketing, sales = system["marketing"], system["sales"]
    lead_id = capture(marketing, unique_email("mover"))["lead_id"]
    deal = deal_of(sales, lead_id)
    pipeline, weighted, _ = _pipeline(sales)
    moved = api.post(
        f"{sales.url}/deals/{deal['deal_id']}/stage",
        json={"stage": "closing", "proposal": [{"sku": "LF-CORE", "quantity": 2}]},
        timeout=20,
    )
    assert moved.status_code == 200, moved.text

    def moves() -> list[Record]:
        return [
            r for r in read_topic("deal.updated") if r.key == lead_id and r.value["data"]["previous_stage"]
        ]

    [move] = eventually(moves)
    data = move.value["data"]
    assert (data["stage"], data["previous_stage"], data["amount"], data["currency"]) == (
        "closing",
        "prospecting",
        "24000.00",
        "EUR",
    )
    assert data["changes"] == ["stage_changed", "first_contact"]
    assert data["first_contact_at"] is not None
    opened = [
        r for r in read_topic("deal.updated") if r.key == lead_id and r.value["data"]["changes"] == ["opened"]
    ]
    assert len({r.value["id"] for r in opened}) == 1
    # The proposal is now in the forecast, weighted by the closing stage's probability.
    after, weighted_after, probability = _pipeline(sales)
    assert after - pipeline == Decimal("24000.00")
    assert weighted_after - weighted == (Decimal("24000.00") * probability).quantize(Decimal("0.01"))


@pytest.mark.parametrize(
    "topic",
    ["lead.created", "lead.qualified", "deal.closed", "order.created", "deal.updated", "order.updated"],
)
def test_every_record_is_a_cloudevent_keyed_by_lead_that_fits_its_schema(
    system: dict[str, Worker], topic: str
) -> None:
    # Runs after the journeys above in this module, which put records on every topic.
    def journey_records() -> list[Record]:
        return [r for r in read_topic(topic) if r.key in JOURNEY_LEADS]

    records = eventually(journey_records)
    schema = json.loads((SCHEMAS / topic / "v1.json").read_text())
    for record in records:
        assert record.headers["content-type"] == b"application/cloudevents+json"
        jsonschema.validate(record.value, schema, format_checker=jsonschema.FormatChecker())
        assert record.value["type"] == topic
        assert record.key == record.value["subject"]
        assert record.key == record.value["data"]["lead_id"]
