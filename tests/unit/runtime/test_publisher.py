"""Event ids: random, or derived from what an event can happen only once for."""

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import faust
import pytest

from schemas.envelope import CloudEvent
from schemas.events import Company, Contact, LeadCreated
from services.runtime.events import EventPublisher

NAMESPACE = UUID("6f1b3d2e-2c1a-4d53-9a55-1eadf10e0001")


class Topic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, *, key: bytes, value: bytes, headers: Any) -> asyncio.Future[None]:
        self.sent.append((key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> tuple[EventPublisher, Topic]:
    publisher = EventPublisher(faust.App("test-publisher"), "/leadflow/test", NAMESPACE)
    topic = Topic()
    monkeypatch.setattr(publisher, "topic", lambda name: topic)
    return publisher, topic


def created(lead_id: str) -> LeadCreated:
    return LeadCreated(
        lead_id=lead_id,
        campaign_id=None,
        channel="web",
        contact=Contact(email="ana@acme.io", name="Ana"),
        company=Company(name="Acme"),
        consent=True,
        intent=None,
        captured_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
    )


async def test_an_event_that_happens_once_per_lead_is_the_same_record_when_published_again(
    publisher: tuple[EventPublisher, Topic],
) -> None:
    events, topic = publisher
    at = datetime(2026, 11, 24, 9, tzinfo=UTC)
    first = await events.publish(created("lead-1"), subject="lead-1", at=at, once_per="lead-1")
    again = await events.publish(created("lead-1"), subject="lead-1", at=at, once_per="lead-1")
    other = await events.publish(created("lead-2"), subject="lead-2", at=at, once_per="lead-2")
    assert first.id == again.id != other.id
    assert topic.sent[0] == topic.sent[1]
    assert topic.sent[0][0] == b"lead-1"
    assert CloudEvent[LeadCreated].model_validate_json(topic.sent[0][1]).id == first.id


async def test_without_once_per_every_event_gets_its_own_id(publisher: tuple[EventPublisher, Topic]) -> None:
    events, _ = publisher
    first = await events.publish(created("lead-1"), subject="lead-1")
    again = await events.publish(created("lead-1"), subject="lead-1")
    assert first.id != again.id
