"""The subscriber tool's parts: validation with the committed JSON Schemas, the
delivery loop (skip invalid records, commit what was delivered), forwarding."""

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from kafka import OffsetAndMetadata, TopicPartition

from schemas import cli
from schemas.envelope import new_event
from schemas.events import Company, Contact, Customer, DealClosed, DealLine, Outcome
from schemas.subscriber import EventValidator, ForwardFailed, Invalid, forward_to, run


def deal_closed(lead_id: str = "lead-1") -> dict[str, Any]:
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id=None,
        outcome=Outcome.WON,
        owner="rep-1",
        customer=Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana")),
        lines=[DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("12000.00"))],
        amount=Decimal("12000.00"),
        currency="EUR",
        opened_at=datetime(2026, 11, 1, tzinfo=UTC),
        first_contact_at=None,
        closed_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    event: dict[str, Any] = json.loads(new_event(data, source="/leadflow/sales", subject=lead_id).to_json())
    return event


def raw(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


validator = EventValidator()


def test_a_valid_event_comes_back_as_it_was_sent() -> None:
    event = deal_closed()
    assert validator.validate("deal.closed", b"lead-1", raw(event)) == event


def broken(**changes: Any) -> dict[str, Any]:
    event = deal_closed()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = event
        for parent in parents:
            node = node[parent]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (broken(data__amount=None), "data: 'amount' is a required property"),
        (broken(data__amount=12000.0), "data.amount: 12000.0 is not of type 'string'"),
        (broken(data__currency="euro"), "data.currency: 'euro' does not match"),
        (broken(data__outcome="maybe"), "data.outcome: 'maybe' is not one of"),
        (broken(data__closed_at="yesterday"), "data.closed_at: 'yesterday' is not a 'date-time'"),
        (broken(data__closed_at="2026-11-02T10:00:00"), "data.closed_at: '2026-11-02T10:00:00' is not a"),
        (broken(time="9999-12-31T23:59:59-14:00"), "time: '9999-12-31T23:59:59-14:00' is not a"),
        (broken(id="not-a-uuid"), "id: 'not-a-uuid' is not a 'uuid'"),
        (broken(dataschema="urn:leadflow:schema:deal.closed:v9"), "unknown dataschema"),
        (broken(type="order.created"), "type 'order.created' on topic 'deal.closed'"),
    ],
)
def test_an_invalid_event_is_refused_with_the_reason(event: dict[str, Any], reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        validator.validate("deal.closed", b"lead-1", raw(event))
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"lead-1", b"\xff not json", "not JSON"),
        (b"lead-1", b"[1, 2]", "not a JSON object"),
        (b"lead-1", None, "no value"),
        (b"someone-else", raw(deal_closed()), "is not the event subject"),
        # Not UTF-8: decoded with replacement, this key would equal the subject.
        (b"\xfflead-1", raw(deal_closed() | {"subject": "\ufffdlead-1"}), "is not the event subject"),
        (
            b"lead-1",
            raw(deal_closed() | {"data": deal_closed()["data"] | {"lead_id": "lead-2"}}),
            "data's lead_id",
        ),
        # Deeper than json.loads can go: refused, not a crashed subscriber.
        (b"lead-1", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_a_record_that_is_not_an_event_is_refused(key: bytes, value: bytes | None, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        validator.validate("deal.closed", key, value)


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    """Hands out one batch per poll, then nothing; remembers commits."""

    def __init__(self, *batches: list[FakeRecord]) -> None:
        self.batches = list(batches)
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []
        self.stop = threading.Event()

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[FakeRecord]]:
        if not self.batches:
            self.stop.set()
            return {}
        batch = self.batches.pop(0)
        return {TopicPartition(batch[0].topic, batch[0].partition): batch}

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append(dict(offsets))


def record(offset: int, value: bytes, lead_id: str = "lead-1") -> FakeRecord:
    return FakeRecord("deal.closed", 3, offset, lead_id.encode(), value)


def committed(consumer: FakeConsumer) -> list[int]:
    return [offsets[TopicPartition("deal.closed", 3)].offset for offsets in consumer.commits]


def test_invalid_records_are_reported_and_skipped_and_the_rest_delivered() -> None:
    good, also_good = deal_closed("lead-1"), deal_closed("lead-2")
    consumer = FakeConsumer(
        [record(10, raw(good)), record(11, b"garbage"), record(12, raw(also_good), lead_id="lead-2")]
    )
    delivered: list[dict[str, Any]] = []
    reports: list[str] = []
    count = run(consumer, validator, delivered.append, report=reports.append, stop=consumer.stop)
    assert count == 2
    assert delivered == [good, also_good]
    [report] = reports
    assert report.startswith("skipped deal.closed partition 3 offset 11: the value is not JSON")
    # Skipped records are committed too: they are reported once, not forever.
    assert committed(consumer) == [13]


def test_it_stops_after_max_events_having_committed_only_what_it_delivered() -> None:
    consumer = FakeConsumer([record(0, raw(deal_closed())), record(1, raw(deal_closed())), record(2, b"x")])
    delivered: list[dict[str, Any]] = []
    count = run(consumer, validator, delivered.append, report=print, stop=consumer.stop, max_events=1)
    assert count == 1
    assert committed(consumer) == [1]


def test_a_failed_forward_stops_it_without_committing_the_event() -> None:
    consumer = FakeConsumer(
        [record(5, raw(deal_closed("lead-1"))), record(6, raw(deal_closed("lead-2")), lead_id="lead-2")]
    )

    def deliver(event: dict[str, Any]) -> None:
        if event["subject"] == "lead-2":
            raise ForwardFailed("receiver down")

    with pytest.raises(ForwardFailed):
        run(consumer, validator, deliver, report=print, stop=consumer.stop)
    # Offset 5 was delivered, 6 was not: a restart resumes at 6.
    assert committed(consumer) == [6]


def test_forwarding_posts_each_event_as_a_structured_cloudevent() -> None:
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    deliver = forward_to(
        "http://billing.test/events", client=httpx.Client(transport=httpx.MockTransport(receiver))
    )
    event = deal_closed()
    deliver(event)
    [request] = received
    assert request.method == "POST"
    assert str(request.url) == "http://billing.test/events"
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert json.loads(request.content) == event


@pytest.mark.parametrize(("status", "tries"), [(503, 3), (429, 3), (400, 1)])
def test_forwarding_retries_what_may_pass_later_then_fails(status: int, tries: int) -> None:
    answered: list[int] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        answered.append(status)
        return httpx.Response(status)

    client = httpx.Client(transport=httpx.MockTransport(receiver))
    deliver = forward_to("http://billing.test/events", client=client, backoff=0)
    with pytest.raises(ForwardFailed, match=f"HTTP {status}"):
        deliver(deal_closed())
    assert len(answered) == tries


def test_the_command_line_refuses_a_topic_that_is_not_an_event_topic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main(["subscribe", "deal.closed.dlq"])
    assert usage.value.code == 2
    assert "invalid choice: 'deal.closed.dlq'" in capsys.readouterr().err


def test_the_default_group_is_the_subscribers_own() -> None:
    args = cli.parser().parse_args(["subscribe", "deal.closed", "order.created"])
    assert args.group.startswith("leadflow-subscriber-")
    assert args.topics == ["deal.closed", "order.created"]
    assert args.from_beginning is False
    assert cli.parser().parse_args(["subscribe", "deal.closed", "--from-beginning"]).from_beginning is True
