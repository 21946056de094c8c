"""Webhooks' agents, with Faust's in-memory test context: events recorded as
deliveries for the subscriptions they match, outcomes applied, news for the
subscription sent on."""

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.envelope import new_event
from schemas.events import Company, Contact, Customer, DealClosed, DealLine, LostReason, Outcome
from services.webhooks.agents import apply_commands, deliver_deal_closed
from services.webhooks.app import deliveries, replica, runtime, settings, subscriptions
from services.webhooks.commands import CreateSubscription, NoteDelivery, RecordAttempt
from services.webhooks.domain import subscriptions as subs
from services.webhooks.domain.deliveries import Attempt, DeliveryStatus
from services.webhooks.domain.subscriptions import Filter, SubscriptionStatus
from services.webhooks.topics import commands
from tests.agents.conftest import Sent, clear, fake_io

NOW = datetime.now(UTC)


class CommandsSent:
    def __init__(self) -> None:
        self.values: list[tuple[bytes, bytes]] = []

    async def __call__(self, *, key: bytes, value: bytes, **_: Any) -> None:
        self.values.append((key, value))


@pytest.fixture(autouse=True)
def _isolated(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_io(runtime, sent, monkeypatch)
    replica.caught_up.set()
    yield from clear(deliveries, subscriptions)
    for subscription in replica.all():
        replica.remove(subscription.subscription_id)


@pytest.fixture
def commands_sent(monkeypatch: pytest.MonkeyPatch) -> CommandsSent:
    sink = CommandsSent()
    monkeypatch.setattr(commands.topic, "send", sink)
    return sink


def subscribe(subscription_id: str, event_types: list[str], flt: Filter | None = None) -> None:
    replica.put(
        subs.new_subscription(
            subscription_id,
            url="https://hooks.example/in",
            event_types=event_types,  # type: ignore[arg-type]
            flt=flt or Filter(),
            description="",
            secret=subs.new_secret(),
            now=NOW,
            by=None,
        )
    )


def won(lead_id: str, outcome: Outcome = Outcome.WON) -> tuple[str, bytes]:
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id="c-1",
        outcome=outcome,
        lost_reason=None if outcome is Outcome.WON else LostReason.NO_BUDGET,
        owner="rep-1",
        customer=Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana")),
        lines=[DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("100.00"))]
        if outcome is Outcome.WON
        else [],
        amount=Decimal("100.00") if outcome is Outcome.WON else Decimal("0"),
        currency="EUR",
        opened_at=NOW,
        first_contact_at=None,
        closed_at=NOW,
    )
    event = new_event(data, source="/leadflow/sales", subject=lead_id)
    return str(event.id), event.to_json()


async def test_an_event_is_recorded_once_for_each_subscription_it_matches(sent: Sent) -> None:
    subscribe("s-all", ["deal.closed"])
    subscribe("s-won", ["deal.closed"], Filter(outcome=Outcome.WON))
    subscribe("s-lost", ["deal.closed"], Filter(outcome=Outcome.LOST))
    subscribe("s-orders", ["order.created"])
    event_id, record = won("lead-1")
    async with deliver_deal_closed.test_context() as agent:
        await agent.put(key=b"lead-1", value=record)
        await agent.put(key=b"lead-1", value=record)  # redelivered
    entry = deliveries.get("lead-1")
    assert entry is not None
    assert set(entry.queues) == {"s-all", "s-won"}
    for queue in entry.queues.values():
        [delivery] = queue
        assert delivery.event_id == event_id
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.body == record.decode()  # the record as it was on the topic
    assert sent.dead_letters == []


async def test_nothing_is_recorded_for_a_disabled_subscription_or_no_match() -> None:
    subscribe("s-gone", ["deal.closed"])
    gone = replica.get("s-gone")
    assert gone is not None
    replica.put(subs.gone(gone, NOW))
    async with deliver_deal_closed.test_context() as agent:
        await agent.put(key=b"lead-2", value=won("lead-2")[1])
    assert deliveries.get("lead-2") is None


async def test_attempts_are_applied_and_a_dead_delivery_tells_its_subscription(
    monkeypatch: pytest.MonkeyPatch, commands_sent: CommandsSent
) -> None:
    monkeypatch.setattr(settings, "retry_attempts", 2)
    subscribe("s-1", ["deal.closed"])
    event_id, record = won("lead-3")
    async with deliver_deal_closed.test_context() as agent:
        await agent.put(key=b"lead-3", value=record)
    async with apply_commands.test_context() as agent:
        for number in (1, 2, 2):  # the last one a duplicate outcome
            outcome = RecordAttempt(
                lead_id="lead-3",
                subscription_id="s-1",
                event_id=event_id,
                attempt=Attempt(number=number, at=NOW, status_code=503),
            )
            await agent.put(key=b"lead-3", value=outcome.model_dump_json().encode())
    entry = deliveries.get("lead-3")
    assert entry is not None
    [delivery] = entry.queues["s-1"]
    assert delivery.status is DeliveryStatus.DEAD
    assert delivery.attempts == 2
    [(key, value)] = commands_sent.values
    assert key == b"s-1"
    assert NoteDelivery.model_validate_json(value).verdict == "dead"


async def test_news_of_dead_deliveries_make_a_subscription_failing_then_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "pause_after_dead_deliveries", 2)
    subscribe("s-2", ["deal.closed"])
    stored = replica.get("s-2")
    assert stored is not None
    async with apply_commands.test_context() as agent:
        create = CreateSubscription(subscription_id="s-2", subscription=stored)
        await agent.put(key=b"s-2", value=create.model_dump_json().encode())
        news = NoteDelivery(subscription_id="s-2", verdict="dead").model_dump_json().encode()
        await agent.put(key=b"s-2", value=news)
        failing = subscriptions.get("s-2")
        await agent.put(key=b"s-2", value=news)
    assert failing is not None
    assert failing.status is SubscriptionStatus.FAILING
    paused = subscriptions.get("s-2")
    assert paused is not None
    assert paused.status is SubscriptionStatus.PAUSED
    assert replica.get("s-2") == paused  # the worker sees its own write at once
