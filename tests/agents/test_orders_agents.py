"""Orders' agents, with Faust's in-memory test context."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY

from schemas.envelope import CloudEvent, new_event
from schemas.events import (
    Company,
    Contact,
    Customer,
    DealClosed,
    DealLine,
    LostReason,
    OrderCreated,
    OrderUpdated,
    Outcome,
)
from services.orders.agents import apply_commands, make_orders
from services.orders.app import orders, runtime
from services.orders.commands import ChangeStatus
from services.orders.domain.orders import OrderStatus, TotalMismatch
from tests.agents.conftest import Sent, clear, fake_io


class Published:
    """The order.created events the agent sent, and a way to make sending fail."""

    def __init__(self) -> None:
        self.events: list[CloudEvent[OrderCreated]] = []
        self.failures: list[BaseException] = []

    async def __call__(self, event: CloudEvent[OrderCreated], *, wait: bool = False) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.events.append(event)

    @property
    def orders(self) -> list[str]:
        return [event.data.order_id for event in self.events]


@pytest.fixture(autouse=True)
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """Stands in for the broker: every test sees what was published, none sends."""
    sink = Published()
    monkeypatch.setattr(runtime.publisher, "send", sink)
    return sink


@pytest.fixture(autouse=True)
def _isolated(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_io(runtime, sent, monkeypatch)
    yield from clear(orders)


def closed(lead_id: str, *, outcome: str = "won", amount: str = "14400.00") -> bytes:
    won = outcome == "won"
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id=None,
        outcome=Outcome(outcome),
        lost_reason=None if won else LostReason.NO_BUDGET,
        owner="rep-1",
        customer=Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana")),
        lines=[
            DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("12000.00")),
            DealLine(sku="LF-SEAT", name="Seat", quantity=5, unit_price=Decimal("480.00")),
        ]
        if won
        else [],
        amount=Decimal(amount if won else "0"),
        currency="EUR",
        opened_at=datetime.now(UTC) - timedelta(days=2),
        first_contact_at=None,
        closed_at=datetime.now(UTC),
    )
    return new_event(data, source="/leadflow/sales", subject=lead_id).to_json()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_won_deal_makes_one_order_and_one_event_however_often_it_arrives(
    sent: Sent, published: Published
) -> None:
    # Each delivery sends order.created again (the last copy may not have got out):
    # the same event, byte for byte, which subscribers drop by its id.
    created_before = sample("leadflow_orders_created_total", currency="EUR")
    value_before = sample("leadflow_orders_order_value_currency_units_sum", currency="EUR")
    record = closed("lead-1")
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-1", value=record)
        first = orders.get("lead-1")
        await agent.put(key=b"lead-1", value=record)  # redelivered
        await agent.put(key=b"lead-1", value=closed("lead-1"))  # published again by sales: new event id
    assert first is not None
    assert first.order_id == "order-lead-1"
    assert first.total == Decimal("14400.00")
    assert orders.get("lead-1") == first
    assert published.orders == ["order-lead-1"] * 3
    assert len({event.to_json() for event in published.events}) == 1
    assert sent.dead_letters == []
    assert sample("leadflow_orders_created_total", currency="EUR") == created_before + 1
    assert sample("leadflow_orders_order_value_currency_units_sum", currency="EUR") == value_before + 14400


async def test_a_lost_deal_makes_no_order(sent: Sent, published: Published) -> None:
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-2", value=closed("lead-2", outcome="lost"))
    assert orders.get("lead-2") is None
    assert published.orders == []
    assert sent.dead_letters == []


async def test_a_tampered_total_goes_to_the_dlq_and_makes_no_order(sent: Sent, published: Published) -> None:
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-3", value=closed("lead-3", amount="1.00"))
    assert orders.get("lead-3") is None
    assert published.orders == []
    [(message, error)] = sent.dead_letters
    assert message.key == b"lead-3"
    assert isinstance(error, TotalMismatch)
    assert "says amount 1.00 EUR but its lines add up to 14400.00" in str(error)


async def test_a_tampered_copy_of_a_deal_already_ordered_is_refused_too(
    sent: Sent, published: Published
) -> None:
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-4", value=closed("lead-4"))
        order = orders.get("lead-4")
        await agent.put(key=b"lead-4", value=closed("lead-4", amount="99.00"))
    assert orders.get("lead-4") == order
    assert published.orders == ["order-lead-4"]
    [(_, error)] = sent.dead_letters
    assert isinstance(error, TotalMismatch)


async def test_an_order_whose_event_could_not_be_sent_is_published_when_the_deal_comes_again(
    sent: Sent, published: Published
) -> None:
    published.failures.append(ConnectionError("broker went away"))
    record = closed("lead-5")
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-5", value=record)
        stored = orders.get("lead-5")
        assert stored is not None
        assert published.events == []
        await agent.put(key=b"lead-5", value=record)  # redelivered (or replayed from the DLQ)
    [(_, error)] = sent.dead_letters
    assert "broker went away" in str(error)
    [announced] = published.events
    assert announced.data.order_id == stored.order_id
    assert announced.data.created_at == stored.created_at
    assert orders.get("lead-5") == stored


async def test_a_crash_that_lost_the_stored_order_makes_the_identical_order_and_event_again(
    sent: Sent, published: Published
) -> None:
    # The event reached the broker, the table write did not: the redelivery must not
    # announce a second, different order under the same id.
    record = closed("lead-7")
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-7", value=record)
        before = orders.get("lead-7")
        orders.table.data.clear()
        await agent.put(key=b"lead-7", value=record)
    assert orders.get("lead-7") == before
    first, again = published.events
    assert first.to_json() == again.to_json()
    assert sent.dead_letters == []


async def test_status_commands_move_the_order_and_stamp_the_move(sent: Sent, published: Published) -> None:
    moved_before = sample("leadflow_orders_status_changes_total", status="confirmed")
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-6", value=closed("lead-6"))
    async with apply_commands.test_context() as agent:
        confirm = ChangeStatus(lead_id="lead-6", status=OrderStatus.CONFIRMED)
        await agent.put(key=b"lead-6", value=confirm.model_dump_json().encode())
        again = ChangeStatus(lead_id="lead-6", status=OrderStatus.CONFIRMED)
        await agent.put(key=b"lead-6", value=again.model_dump_json().encode())
    order = orders.get("lead-6")
    assert order is not None
    assert order.status is OrderStatus.CONFIRMED
    assert [change.status for change in order.history] == ["created", "confirmed"]
    assert order.history[1].at >= order.history[0].at
    # The impossible second move was refused to its caller, not dead-lettered.
    assert sent.dead_letters == []
    assert sample("leadflow_orders_status_changes_total", status="confirmed") == moved_before + 1


async def test_the_gauge_counts_the_orders_in_each_status_from_the_table(
    published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-7", value=closed("lead-7"))
        await agent.put(key=b"lead-8", value=closed("lead-8"))
    async with apply_commands.test_context() as agent:
        cancel = ChangeStatus(lead_id="lead-8", status=OrderStatus.CANCELLED)
        await agent.put(key=b"lead-8", value=cancel.model_dump_json().encode())
    # No partitions are assigned under the test context: take the whole table as this worker's,
    # after a rebalance the gauge has not counted yet (it rebuilds from the table once).
    monkeypatch.setattr(runtime.cluster, "local_items", lambda table: table.items())
    monkeypatch.setattr(runtime.app, "rebalancing_count", runtime.app.rebalancing_count + 1)
    assert sample("leadflow_orders_in_status", status="created") == 1
    assert sample("leadflow_orders_in_status", status="cancelled") == 1
    assert sample("leadflow_orders_in_status", status="fulfilled") == 0


async def test_each_status_change_publishes_order_updated_and_again_when_the_command_comes_back(
    sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    announced: list[tuple[OrderUpdated, str | None]] = []

    async def publish(data: Any, *, subject: str, at: Any = None, once_per: str | None = None) -> None:
        announced.append((data, once_per))

    monkeypatch.setattr(runtime.publisher, "publish", publish)
    async with make_orders.test_context() as agent:
        await agent.put(key=b"lead-8", value=closed("lead-8"))
    confirm = ChangeStatus(lead_id="lead-8", status=OrderStatus.CONFIRMED, by="ops")
    async with apply_commands.test_context() as agent:
        await agent.put(key=b"lead-8", value=confirm.model_dump_json().encode())
        # Delivered again (its order.updated may have died with the worker): announced again, same id.
        await agent.put(key=b"lead-8", value=confirm.model_dump_json().encode())
        fulfil = ChangeStatus(lead_id="lead-8", status=OrderStatus.FULFILLED)
        await agent.put(key=b"lead-8", value=fulfil.model_dump_json().encode())
    assert [(e.status, e.previous_status, e.by, once) for e, once in announced] == [
        ("confirmed", "created", "ops", "order-lead-8:confirmed"),
        ("confirmed", "created", "ops", "order-lead-8:confirmed"),
        ("fulfilled", "confirmed", None, "order-lead-8:fulfilled"),
    ]
    assert announced[0] == announced[1]
    assert sent.dead_letters == []
