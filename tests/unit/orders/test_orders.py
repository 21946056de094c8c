"""The orders domain: orders from won deals, their lifecycle, their event."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from schemas.events import Company, Contact, Customer, DealClosed, DealLine, OrderCreated
from schemas.events import OrderStatus as PublicStatus
from services.orders.domain import orders as lifecycle
from services.orders.domain.orders import OrderStatus, TotalMismatch
from services.runtime.errors import Conflict

CLOSED = datetime(2026, 11, 2, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 2, 9, 0, 3, tzinfo=UTC)
NAMESPACE = UUID("6f1b3d2e-2c1a-4d53-9a55-1eadf10e0001")


def won(lead_id: str = "lead-1", **changes: object) -> DealClosed:
    fields: dict[str, object] = {
        "deal_id": f"deal-{lead_id}",
        "lead_id": lead_id,
        "campaign_id": None,
        "outcome": "won",
        "owner": "rep-1",
        "customer": Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana")),
        "lines": [
            DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("12000.00")),
            DealLine(sku="LF-SEAT", name="Seat", quantity=5, unit_price=Decimal("480.00")),
        ],
        "amount": "14400.00",
        "currency": "EUR",
        "opened_at": CLOSED - timedelta(days=3),
        "first_contact_at": None,
        "closed_at": CLOSED,
    }
    return DealClosed.model_validate({**fields, **changes})


def test_a_won_deal_makes_an_order_with_its_lines_total_and_ids() -> None:
    order = lifecycle.order_from_deal(won())
    assert order.order_id == "order-lead-1"
    assert order.deal_id == "deal-lead-1"
    assert order.lead_id == "lead-1"
    assert order.total == Decimal("14400.00")
    assert order.currency == "EUR"
    assert [(line.sku, line.line_total) for line in order.lines] == [
        ("LF-CORE", Decimal("12000.00")),
        ("LF-SEAT", Decimal("2400.00")),
    ]
    assert order.customer.company.name == "Acme"
    assert order.status is OrderStatus.CREATED
    # Created when its deal was won, so every delivery of the deal makes this very order.
    assert order.created_at == order.deal_closed_at == CLOSED
    assert [(change.status, change.at) for change in order.history] == [(OrderStatus.CREATED, CLOSED)]
    assert lifecycle.order_from_deal(won()) == order


def test_a_deal_whose_amount_is_not_what_its_lines_add_up_to_makes_no_order() -> None:
    with pytest.raises(TotalMismatch, match=r"says amount 14000.00 EUR but its lines add up to 14400.00"):
        lifecycle.order_from_deal(won(amount="14000.00"))
    # A ValueError, so the consumer dead-letters it with this reason.
    assert issubclass(TotalMismatch, ValueError)


def test_the_same_amount_written_differently_is_not_a_mismatch() -> None:
    assert lifecycle.order_from_deal(won(amount="14400")).total == Decimal("14400")


def test_a_lost_deal_makes_no_order() -> None:
    with pytest.raises(ValueError, match="only won deals"):
        lifecycle.order_from_deal(won(outcome="lost", lost_reason="timing", lines=[], amount="0"))


def test_the_lifecycle_moves_forward_and_stamps_every_change() -> None:
    order = lifecycle.order_from_deal(won())
    confirmed = lifecycle.change_status(order, OrderStatus.CONFIRMED, NOW + timedelta(hours=1))
    fulfilled = lifecycle.change_status(confirmed, OrderStatus.FULFILLED, NOW + timedelta(days=2))
    assert fulfilled.status is OrderStatus.FULFILLED
    assert [(c.status, c.at) for c in fulfilled.history] == [
        (OrderStatus.CREATED, CLOSED),
        (OrderStatus.CONFIRMED, NOW + timedelta(hours=1)),
        (OrderStatus.FULFILLED, NOW + timedelta(days=2)),
    ]
    assert order.status is OrderStatus.CREATED  # the input is not changed


@pytest.mark.parametrize("path", [["cancelled"], ["confirmed", "cancelled"]])
def test_an_order_can_be_cancelled_before_fulfilment(path: list[str]) -> None:
    order = lifecycle.order_from_deal(won())
    for status in path:
        order = lifecycle.change_status(order, OrderStatus(status), NOW)
    assert order.status is OrderStatus.CANCELLED


@pytest.mark.parametrize(
    ("path", "impossible"),
    [
        ([], "fulfilled"),  # not confirmed yet
        ([], "created"),
        (["confirmed"], "confirmed"),
        (["confirmed", "fulfilled"], "cancelled"),  # too late
        (["cancelled"], "confirmed"),
    ],
)
def test_impossible_moves_are_conflicts(path: list[str], impossible: str) -> None:
    order = lifecycle.order_from_deal(won())
    for status in path:
        order = lifecycle.change_status(order, OrderStatus(status), NOW)
    with pytest.raises(Conflict, match=f"cannot become {impossible}") as refused:
        lifecycle.change_status(order, OrderStatus(impossible), NOW)
    assert refused.value.field == "status"


def test_the_order_created_event_is_the_same_however_often_it_is_built() -> None:
    order = lifecycle.order_from_deal(won())
    first = lifecycle.created_event(order, namespace=NAMESPACE, source="/leadflow/orders")
    again = lifecycle.created_event(
        lifecycle.order_from_deal(won()), namespace=NAMESPACE, source="/leadflow/orders"
    )
    assert first.to_json() == again.to_json()
    assert first.type == "order.created"
    assert first.subject == "lead-1"
    assert first.time == CLOSED
    assert first.dataschema == OrderCreated.dataschema()
    assert first.data.total == Decimal("14400.00")
    assert first.data.created_at == CLOSED
    assert [line.line_total for line in first.data.lines] == [Decimal("12000.00"), Decimal("2400.00")]


def test_each_order_and_each_deployment_has_its_own_event_id() -> None:
    one = lifecycle.order_from_deal(won("lead-1"))
    two = lifecycle.order_from_deal(won("lead-2"))
    other = UUID("00000000-0000-4000-8000-000000000000")
    ids = {
        lifecycle.created_event(o, namespace=ns, source="/leadflow/orders").id
        for o in (one, two)
        for ns in (NAMESPACE, other)
    }
    assert len(ids) == 4


def test_deal_to_order_latency_is_from_close_to_when_orders_made_it_and_never_negative() -> None:
    order = lifecycle.order_from_deal(won())
    assert lifecycle.deal_to_order_seconds(order, NOW) == 3.0
    assert lifecycle.deal_to_order_seconds(order, CLOSED - timedelta(seconds=2)) == 0.0


def test_order_ids_route_to_their_lead() -> None:
    assert lifecycle.lead_id_of("order-lead-9") == "lead-9"
    assert lifecycle.lead_id_of("deal-lead-9") is None


def test_a_status_change_records_who_made_it() -> None:
    order = lifecycle.order_from_deal(won())
    confirmed = lifecycle.change_status(order, OrderStatus.CONFIRMED, NOW, by="ops-carla")
    assert [(c.status, c.by) for c in confirmed.history] == [
        (OrderStatus.CREATED, None),
        (OrderStatus.CONFIRMED, "ops-carla"),
    ]


def test_each_status_change_is_announced_once_from_the_order_as_stored() -> None:
    order = lifecycle.order_from_deal(won())
    assert lifecycle.updated_event(order) is None  # only created: order.created says so
    confirmed = lifecycle.change_status(order, OrderStatus.CONFIRMED, NOW, by="ops")
    fulfilled = lifecycle.change_status(confirmed, OrderStatus.FULFILLED, NOW + timedelta(days=2))
    first, second = lifecycle.updated_event(confirmed), lifecycle.updated_event(fulfilled)
    assert first is not None
    assert second is not None
    assert (first[0].status, first[0].previous_status, first[0].by, first[0].updated_at) == (
        PublicStatus.CONFIRMED,
        PublicStatus.CREATED,
        "ops",
        NOW,
    )
    assert (first[1], second[1]) == ("order-lead-1:confirmed", "order-lead-1:fulfilled")
    assert (second[0].status, second[0].total, second[0].currency) == (
        PublicStatus.FULFILLED,
        Decimal("14400.00"),
        "EUR",
    )
    assert lifecycle.updated_event(fulfilled) == second  # made again: identical


def test_the_public_statuses_are_the_orders_statuses() -> None:
    assert [str(s) for s in PublicStatus] == [str(s) for s in OrderStatus]
