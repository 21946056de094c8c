"""Sales' agents, with Faust's in-memory test context."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from schemas.envelope import new_event
from schemas.events import Company, Contact, LeadQualified, ScoreReason
from services.sales.agents import open_deals
from services.sales.app import deals, runtime
from tests.agents.conftest import Sent, clear, fake_io


@pytest.fixture(autouse=True)
def _isolated(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_io(runtime, sent, monkeypatch)
    yield from clear(deals)


def qualified(lead_id: str) -> bytes:
    data = LeadQualified(
        lead_id=lead_id,
        campaign_id=None,
        score=70,
        threshold=60,
        reasons=[ScoreReason(rule="fit.industry", points=15)],
        contact=Contact(email="ana@acme.io", name="Ana"),
        company=Company(name="Acme", country="DE"),
        qualified_at=datetime.now(UTC),
    )
    return new_event(data, source="/leadflow/marketing", subject=lead_id).to_json()


async def test_a_qualified_lead_opens_one_deal_even_when_delivered_twice(sent: Sent) -> None:
    async with open_deals.test_context() as agent:
        record = qualified("lead-1")
        await agent.put(key=b"lead-1", value=record)
        first = deals.get("lead-1")
        await agent.put(key=b"lead-1", value=record)
    assert first is not None
    assert first.stage == "prospecting"
    assert first.deal_id == "deal-lead-1"
    assert deals.get("lead-1") == first
    assert sent.dead_letters == []


async def test_a_record_that_is_not_a_cloudevent_goes_to_the_dlq(sent: Sent) -> None:
    async with open_deals.test_context() as agent:
        await agent.put(key=b"lead-2", value=b'{"lead_id": "lead-2"}')
    assert deals.get("lead-2") is None
    [(message, error)] = sent.dead_letters
    assert message.key == b"lead-2"
    assert "specversion" in str(error) or "Field required" in str(error)


async def test_a_record_keyed_other_than_its_subject_goes_to_the_dlq(sent: Sent) -> None:
    async with open_deals.test_context() as agent:
        await agent.put(key=b"someone-else", value=qualified("lead-3"))
    assert deals.get("lead-3") is None
    [(_, error)] = sent.dead_letters
    assert "subject" in str(error)
