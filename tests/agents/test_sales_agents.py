"""Sales' agents, with Faust's in-memory test context.

What an agent sends to sales' own topics (assignment requests to the desk, and
the desk's decisions as commands) is captured here and handed to the agent that
reads that topic, as Kafka would."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.envelope import new_event
from schemas.events import (
    Company,
    Contact,
    DealChange,
    DealClosed,
    DealStage,
    DealUpdated,
    LeadQualified,
    ScoreReason,
)
from services.sales import handlers, topics
from services.sales.agents import apply_commands, assign_deals, open_deals
from services.sales.app import deals, desk, placements, queue, runtime
from services.sales.commands import CloseDeal, MoveStage, RecordContact
from services.sales.domain.assignment import ReleaseDeal, Rep, Roster
from services.sales.domain.catalog import OrderedLine
from services.sales.domain.deals import Assignment, ContactChannel, Stage
from tests.agents.conftest import Sent, clear, fake_io

ROSTER = Roster(
    version="agents",
    reps=[
        Rep(rep_id="rep-de-1", name="Jonas", territories=["DE"], capacity=1),
        Rep(rep_id="rep-de-2", name="Lena", territories=["DE"], capacity=1),
        Rep(rep_id="rep-fr", name="Camille", territories=["FR"], capacity=1),
    ],
)
DE_DESK = "desk:DE"


class Wire:
    """Records sent to sales' own topics, as (key, value)."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes]] = []
        self.decisions: list[tuple[bytes, bytes]] = []

    def take_requests(self) -> list[tuple[bytes, bytes]]:
        return _drain(self.requests)

    def take_decisions(self) -> list[tuple[bytes, bytes]]:
        return _drain(self.decisions)


def _drain(records: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # Emptied in place: the fake senders keep appending to these very lists.
    taken = list(records)
    records.clear()
    return taken


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    captured = Wire()

    def recorder(into: list[tuple[bytes, bytes]]) -> Any:
        async def send(*, key: bytes, value: bytes) -> None:
            into.append((key, value))

        return send

    monkeypatch.setattr(topics.assignment_requests, "send", recorder(captured.requests))
    monkeypatch.setattr(topics.commands.topic, "send", recorder(captured.decisions))
    monkeypatch.setattr(handlers, "roster", ROSTER)
    return captured


@pytest.fixture(autouse=True)
def _isolated(sent: Sent, wire: Wire, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_io(runtime, sent, monkeypatch)
    yield from clear(deals, desk, placements, queue)


def qualified(lead_id: str, country: str = "DE", detail: str = "") -> bytes:
    data = LeadQualified(
        lead_id=lead_id,
        campaign_id="cmp-1",
        score=70,
        threshold=60,
        reasons=[ScoreReason(rule="fit.industry", points=15, detail=detail)],
        contact=Contact(email="ana@acme.io", name="Ana"),
        company=Company(name="Acme", country=country),
        qualified_at=datetime.now(UTC),
    )
    return new_event(data, source="/leadflow/marketing", subject=lead_id).to_json()


async def open_and_assign(wire: Wire, *lead_ids: str, country: str = "DE") -> None:
    """lead.qualified in; its requests through the desk; the decisions back to the deals."""
    async with open_deals.test_context() as agent:
        for lead_id in lead_ids:
            await agent.put(key=lead_id.encode(), value=qualified(lead_id, country))
    await through_desk(wire)


async def through_desk(wire: Wire) -> None:
    # Until the desks ask nothing more of themselves (a DrainDesk).
    while wire.requests:
        async with assign_deals.test_context() as agent:
            for key, value in wire.take_requests():
                await agent.put(key=key, value=value)
    async with apply_commands.test_context() as agent:
        for key, value in wire.take_decisions():
            await agent.put(key=key, value=value)


def queued_leads(desk_key: str) -> list[str]:
    """The desk's queue as stored, oldest first."""
    entries = [entry for key, entry in queue.items() if key.startswith(f"{desk_key}/")]
    return [entry.lead_id for entry in sorted(entries, key=lambda entry: entry.seq)]


async def command(value: Any) -> None:
    async with apply_commands.test_context() as agent:
        await agent.put(key=value.lead_id.encode(), value=value.model_dump_json().encode())


async def test_a_qualified_lead_opens_one_deal_even_when_delivered_twice(sent: Sent, wire: Wire) -> None:
    async with open_deals.test_context() as agent:
        record = qualified("lead-1")
        await agent.put(key=b"lead-1", value=record)
        first = deals.get("lead-1")
        await agent.put(key=b"lead-1", value=record)
    assert first is not None
    assert first.stage == "prospecting"
    assert first.deal_id == "deal-lead-1"
    assert first.assignment is Assignment.PENDING
    assert deals.get("lead-1") == first
    assert sent.dead_letters == []
    # Each delivery asks the desk while the deal waits for its answer, under its desk's key.
    requests = wire.take_requests()
    assert [key for key, _ in requests] == [DE_DESK.encode()] * 2
    assert requests[0][1] == requests[1][1]


async def test_the_desk_assigns_by_territory_and_round_robin_and_queues_the_rest(wire: Wire) -> None:
    await open_and_assign(wire, "lead-1", "lead-2", "lead-3")
    owners = {lead_id: deals.get(lead_id).owner for lead_id in ("lead-1", "lead-2", "lead-3")}  # type: ignore[union-attr]
    assert owners == {"lead-1": "rep-de-1", "lead-2": "rep-de-2", "lead-3": None}
    queued = deals.get("lead-3")
    assert queued is not None
    assert queued.assignment is Assignment.QUEUED
    book = desk.get(DE_DESK)
    assert book is not None
    assert queued_leads(DE_DESK) == ["lead-3"]
    assert book.waiting == 1
    assert [book.load(rep.rep_id).open for rep in ROSTER.reps] == [1, 1, 0]


async def test_two_pools_are_two_desks_with_requests_keyed_apart(wire: Wire) -> None:
    async with open_deals.test_context() as agent:
        await agent.put(key=b"lead-de", value=qualified("lead-de", "DE"))
        await agent.put(key=b"lead-fr", value=qualified("lead-fr", "FR"))
        await agent.put(key=b"lead-jp", value=qualified("lead-jp", "JP"))
    requests = wire.take_requests()
    # JP: no rep names it and none covers "*": the rep-less catch-all desk.
    assert [key for key, _ in requests] == [b"desk:DE", b"desk:FR", b"desk:*"]
    wire.requests.extend(requests)
    await through_desk(wire)
    owners = {lead_id: deals.get(lead_id).owner for lead_id in ("lead-de", "lead-fr", "lead-jp")}  # type: ignore[union-attr]
    assert owners == {"lead-de": "rep-de-1", "lead-fr": "rep-fr", "lead-jp": None}
    # Each desk's state under its own keys: its reps only.
    assert {key: set(book.reps) for key, book in desk.items()} == {
        "desk:DE": {"rep-de-1"},
        "desk:FR": {"rep-fr"},
        "desk:*": set(),
    }
    assert {key for key, _ in placements.items()} == {"desk:DE/lead-de", "desk:FR/lead-fr", "desk:*/lead-jp"}
    assert queued_leads("desk:*") == ["lead-jp"]


async def test_a_redelivered_request_keeps_one_owner_and_one_slot(wire: Wire) -> None:
    async with open_deals.test_context() as agent:
        await agent.put(key=b"lead-1", value=qualified("lead-1"))
    [request] = wire.take_requests()
    wire.requests.extend([request, request])
    await through_desk(wire)
    deal = deals.get("lead-1")
    assert deal is not None
    assert deal.owner == "rep-de-1"
    book = desk.get(DE_DESK)
    assert book is not None
    assert book.load("rep-de-1").open == 1
    assert book.load("rep-de-2").open == 0
    assert len(list(placements.items())) == 1


async def test_closing_publishes_one_deal_closed_and_hands_the_slot_to_the_queue(
    sent: Sent, wire: Wire
) -> None:
    await open_and_assign(wire, "lead-1", "lead-2", "lead-3")
    await command(RecordContact(lead_id="lead-1", channel=ContactChannel.CALL, note=None))
    await command(MoveStage(lead_id="lead-1", stage=Stage.CLOSING))
    await command(
        CloseDeal(
            lead_id="lead-1",
            outcome="won",
            lines=[OrderedLine(sku="LF-CORE", quantity=1, discount_percent=10)],
            lost_reason=None,
        )
    )
    [closed] = sent.of_type("deal.closed")
    assert isinstance(closed, DealClosed)
    assert closed.owner == "rep-de-1"
    assert str(closed.amount) == "10800.00"
    assert [str(line.unit_price) for line in closed.lines] == ["10800.00"]
    assert closed.first_contact_at is not None
    assert sent.dead_letters == []
    # The release reaches the desk, which gives the freed slot to the queued deal.
    await through_desk(wire)
    waiting = deals.get("lead-3")
    assert waiting is not None
    assert (waiting.owner, waiting.assignment) == ("rep-de-1", Assignment.ASSIGNED)
    book = desk.get(DE_DESK)
    assert book is not None
    assert (book.won, book.waiting, book.load("rep-de-1").open, book.load("rep-de-1").won) == (1, 0, 1, 1)
    # The queue entry taken is deleted, not left behind.
    assert queued_leads(DE_DESK) == []


async def test_a_close_stored_but_not_announced_is_announced_again_when_it_comes_back(
    sent: Sent, wire: Wire
) -> None:
    # Seen under chaos (a SIGKILL just after the 200): the closed deal reached its
    # changelog, its deal.closed and the desk's release died in the producer's
    # buffer, and the redelivered command found the deal closed and said only 409.
    await open_and_assign(wire, "lead-1")
    close = CloseDeal(
        lead_id="lead-1", outcome="won", lines=[OrderedLine(sku="LF-CORE", quantity=1)], lost_reason=None
    )
    await command(close)
    [first] = sent.of_type("deal.closed")
    [release] = wire.take_requests()
    sent.events.clear()  # lost with the worker

    await command(close)  # redelivered: nothing committed its offset
    [again] = sent.of_type("deal.closed")
    assert again == first  # the same content, published under the same once_per id
    assert wire.requests == [release]
    assert sent.dead_letters == []  # refused to a caller as a conflict, not dead-lettered
    await through_desk(wire)
    book = desk.get(DE_DESK)
    assert book is not None
    assert (book.won, book.load("rep-de-1").open) == (1, 0)  # released once


async def test_a_deal_closed_while_queued_is_skipped_when_a_slot_frees(wire: Wire) -> None:
    await open_and_assign(wire, "lead-1", "lead-2", "lead-3", "lead-4")
    for lead_id in ("lead-3", "lead-1"):
        await command(CloseDeal(lead_id=lead_id, outcome="lost", lines=[], lost_reason="timing"))
    assert [key for key, _ in wire.requests] == [DE_DESK.encode()] * 2
    await through_desk(wire)
    # lead-3 closed while it waited: lead-1's slot goes to lead-4.
    assert [deals.get(lead_id).owner for lead_id in ("lead-3", "lead-4")] == [None, "rep-de-1"]  # type: ignore[union-attr]
    book = desk.get(DE_DESK)
    assert book is not None
    assert (book.waiting, book.lost, queued_leads(DE_DESK)) == (0, 2, [])


async def test_a_refused_command_changes_nothing_and_publishes_nothing(sent: Sent, wire: Wire) -> None:
    await open_and_assign(wire, "lead-1")
    await command(MoveStage(lead_id="lead-1", stage=Stage.PRESENTING))
    before = deals.get("lead-1")
    await command(MoveStage(lead_id="lead-1", stage=Stage.QUALIFYING))
    await command(
        CloseDeal(
            lead_id="lead-1",
            outcome="won",
            lines=[OrderedLine(sku="LF-LEGACY", quantity=1)],
            lost_reason=None,
        )
    )
    assert deals.get("lead-1") == before
    assert sent.of_type("deal.closed") == []
    assert wire.take_requests() == []


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


async def test_a_lead_whose_deal_kafka_could_not_store_goes_to_the_dlq(sent: Sent, wire: Wire) -> None:
    # Under the broker's 1 MiB, but the deal built from it is not: stored, its changelog
    # write would fail and stop the worker on every restart (issue #9).
    async with open_deals.test_context() as agent:
        await agent.put(key=b"lead-big", value=qualified("lead-big", detail="x" * 950_000))
        await agent.put(key=b"lead-1", value=qualified("lead-1"))
    [(message, error)] = sent.dead_letters
    assert message.key == b"lead-big"
    assert "at most 900,000" in str(error)
    assert deals.get("lead-big") is None
    assert deals.get("lead-1") is not None
    assert [key for key, _ in wire.take_requests()] == [DE_DESK.encode()]


async def test_bad_assignment_records_go_to_the_dlq(sent: Sent) -> None:
    # A request keyed other than its desk would write that desk's state to another partition.
    misrouted = ReleaseDeal(desk=DE_DESK, lead_id="x", outcome="won", at=datetime.now(UTC))
    async with assign_deals.test_context() as agent:
        await agent.put(key=b"desk:DE", value=b'{"kind": "evict", "desk": "desk:DE", "lead_id": "x"}')
        await agent.put(key=b"desk:FR", value=misrouted.model_dump_json().encode())
    async with apply_commands.test_context() as agent:
        decision = (
            b'{"kind": "assign_deal", "lead_id": "nobody", "owner": "rep-de-1", '
            b'"decided_at": "2026-11-02T09:00:00Z"}'
        )
        await agent.put(key=b"nobody", value=decision)
    assert [message.key for message, _ in sent.dead_letters] == [b"desk:DE", b"desk:FR", b"nobody"]
    assert "not the request's desk" in str(sent.dead_letters[1][1])
    assert "no deal" in str(sent.dead_letters[2][1])
    assert list(desk.items()) == []


@pytest.fixture
def once(monkeypatch: pytest.MonkeyPatch, sent: Sent) -> list[tuple[str, str | None]]:
    """(type, once_per) of each event published: what its id derives from."""
    published: list[tuple[str, str | None]] = []

    async def publish(data: Any, *, subject: str, at: Any = None, once_per: str | None = None) -> None:
        sent.events.append((subject, data))
        published.append((data.TYPE, once_per))

    monkeypatch.setattr(runtime.publisher, "publish", publish)
    return published


async def test_a_deal_announces_its_opening_assignment_moves_and_first_contact(
    sent: Sent, wire: Wire, once: list[tuple[str, str | None]]
) -> None:
    await open_and_assign(wire, "lead-1")
    await command(MoveStage(lead_id="lead-1", stage=Stage.QUALIFYING, by="rep-de-1"))
    await command(RecordContact(lead_id="lead-1", channel=ContactChannel.CALL, note=None))
    await command(MoveStage(lead_id="lead-1", stage=Stage.PRESENTING))
    await command(CloseDeal(lead_id="lead-1", outcome="lost", lines=[], lost_reason="timing"))
    updates = [u for u in sent.of_type("deal.updated") if isinstance(u, DealUpdated)]
    assert [(u.changes, u.stage, u.owner) for u in updates] == [
        ([DealChange.OPENED], DealStage.PROSPECTING, None),
        ([DealChange.ASSIGNED], DealStage.PROSPECTING, "rep-de-1"),
        ([DealChange.STAGE_CHANGED, DealChange.FIRST_CONTACT], DealStage.QUALIFYING, "rep-de-1"),
        ([DealChange.STAGE_CHANGED], DealStage.PRESENTING, "rep-de-1"),
    ]
    assert updates[2].by == "rep-de-1"
    assert [o for t, o in once if t == "deal.updated"] == [
        "deal-lead-1:opened",
        "deal-lead-1:assigned",
        "deal-lead-1:stage:2",
        "deal-lead-1:stage:3",
    ]
    # The contact after the first one and the close are not deal.updated's to say.
    assert len(sent.of_type("deal.closed")) == 1


async def test_a_move_stored_but_not_announced_is_announced_again_when_it_comes_back(
    sent: Sent, wire: Wire, once: list[tuple[str, str | None]]
) -> None:
    await open_and_assign(wire, "lead-1")
    move = MoveStage(lead_id="lead-1", stage=Stage.PRESENTING)
    await command(move)
    [first] = sent.of_type("deal.updated")[-1:]
    first_id = once[-1]
    sent.events.clear()  # lost with the worker
    once.clear()

    await command(move)  # redelivered: the deal is there already
    assert sent.of_type("deal.updated") == [first]  # identical content, same once_per
    assert once == [first_id]
    assert deals.get("lead-1").stage is Stage.PRESENTING  # type: ignore[union-attr]


async def test_a_redelivered_lead_qualified_announces_the_same_opening(
    sent: Sent, wire: Wire, once: list[tuple[str, str | None]]
) -> None:
    async with open_deals.test_context() as agent:
        await agent.put(key=b"lead-1", value=qualified("lead-1"))
        await agent.put(key=b"lead-1", value=qualified("lead-1"))
    first, again = sent.of_type("deal.updated")
    assert first == again
    assert once == [("deal.updated", "deal-lead-1:opened")] * 2
