"""The event contract's own rules: envelope, money, generated schemas."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas import generate
from schemas.envelope import CloudEvent, new_event
from schemas.events import Company, Contact, Customer, DealClosed, DealLine, LeadCreated, OrderCreated


def lead_created(lead_id: str = "lead-1") -> LeadCreated:
    return LeadCreated(
        lead_id=lead_id,
        campaign_id=None,
        channel="web",
        contact=Contact(email="ana@acme.io", name="Ana"),
        company=Company(name="Acme"),
        consent=True,
        intent=None,
        captured_at=datetime(2026, 11, 24, 10, tzinfo=UTC),
    )


def won_deal(**changes: object) -> dict[str, object]:
    customer = Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana"))
    return {
        "deal_id": "deal-lead-1",
        "lead_id": "lead-1",
        "campaign_id": None,
        "outcome": "won",
        "owner": "rep-1",
        "customer": customer,
        "lines": [DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("10.00"))],
        "amount": "10.00",
        "currency": "EUR",
        "opened_at": datetime(2026, 11, 1, tzinfo=UTC),
        "first_contact_at": None,
        "closed_at": datetime(2026, 11, 2, tzinfo=UTC),
        **changes,
    }


def test_an_envelope_round_trips_and_names_its_type_schema_and_subject() -> None:
    event = new_event(lead_created(), source="/leadflow/marketing", subject="lead-1")
    parsed = CloudEvent[LeadCreated].model_validate_json(event.to_json())
    assert parsed == event
    assert parsed.type == "lead.created"
    assert parsed.dataschema == "urn:leadflow:schema:lead.created:v1"
    assert parsed.subject == "lead-1"


def test_event_time_is_kept_in_utc() -> None:
    berlin = timezone(timedelta(hours=1))
    event = new_event(
        lead_created(), source="/x", subject="lead-1", at=datetime(2026, 11, 24, 11, tzinfo=berlin)
    )
    assert event.time == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert b'"time":"2026-11-24T10:00:00Z"' in event.to_json()


def test_an_envelope_whose_type_does_not_match_its_data_is_refused() -> None:
    raw = new_event(lead_created(), source="/x", subject="lead-1").model_dump(mode="json")
    raw["type"] = "deal.closed"
    with pytest.raises(ValidationError, match="does not match"):
        CloudEvent[LeadCreated].model_validate(raw)


def test_money_is_a_decimal_string_on_the_wire_and_floats_are_refused() -> None:
    deal = DealClosed.model_validate(won_deal())
    assert deal.amount == Decimal("10.00")
    assert '"amount":"10.00"' in deal.model_dump_json()
    with pytest.raises(ValidationError, match="not a float"):
        DealClosed.model_validate(won_deal(amount=10.0))
    with pytest.raises(ValidationError, match="ISO 4217"):
        DealClosed.model_validate(won_deal(currency="euro"))


def test_a_lost_deal_needs_a_reason_and_a_won_deal_needs_lines() -> None:
    with pytest.raises(ValidationError, match="lost_reason"):
        DealClosed.model_validate(won_deal(outcome="lost", lines=[]))
    with pytest.raises(ValidationError, match="at least one line"):
        DealClosed.model_validate(won_deal(lines=[]))


def test_unknown_fields_from_a_newer_producer_are_ignored() -> None:
    raw = new_event(lead_created(), source="/x", subject="lead-1").model_dump(mode="json")
    raw["data"]["favourite_colour"] = "teal"
    raw["extension"] = "x"
    assert CloudEvent[LeadCreated].model_validate(raw).data == lead_created()


def test_the_committed_json_schemas_are_up_to_date() -> None:
    assert generate.stale_files() == [], "run: make schemas"


def test_the_json_schema_describes_money_as_a_string() -> None:
    schema = generate.event_schema(OrderCreated)
    total = schema["$defs"]["OrderCreated"]["properties"]["total"]
    assert total["type"] == "string"
    assert schema["properties"]["type"] == {"const": "order.created"}


def test_a_deal_line_may_say_its_list_price_and_discount_as_decimal_strings() -> None:
    line = DealLine(
        sku="LF-CORE",
        name="Core",
        quantity=1,
        unit_price=Decimal("10800.00"),
        list_price=Decimal("12000.00"),
        discount_percent=Decimal("10"),
    )
    assert '"list_price":"12000.00","discount_percent":"10"' in line.model_dump_json()
    assert DealLine(sku="x", name="x", quantity=1, unit_price=Decimal("1")).discount_percent is None
    with pytest.raises(ValidationError, match="between 0 and 100"):
        DealLine(sku="x", name="x", quantity=1, unit_price=Decimal("1"), discount_percent=Decimal("120"))
    with pytest.raises(ValidationError, match="not a float"):
        DealLine.model_validate(
            {"sku": "x", "name": "x", "quantity": 1, "unit_price": "1", "discount_percent": 5.5}
        )
