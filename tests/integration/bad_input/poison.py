"""Poison: malformed and hostile records on every topic the services consume, and
the check that each one lands in `<topic>.dlq`, byte for byte, with the truth
about where it came from.

Each record starts from a valid one (an event, a command, a desk request) and
is broken one way: not JSON, not an object, a field of the wrong shape, a value
of up to ~900 KB, a key that is not the subject, no key, an unknown type or
version, nesting deeper than any parser allows, an empty or null value, invalid
UTF-8, a wrong specversion, money as a float, forged dlq.* headers, a time that
overflows when converted to UTC. A mutation that leaves a
record valid would be processed, not dead-lettered, so every mutation is one the
consumer must refuse: `refusal` runs a record through the consumer's own models,
and a test runs it over everything the generator makes.
"""

import base64
import copy
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import TypeAdapter

from schemas import topics
from schemas.envelope import CloudEvent, new_event
from schemas.events import (
    EVENT_DATA,
    Channel,
    Company,
    Contact,
    Customer,
    DealChange,
    DealClosed,
    DealLine,
    DealStage,
    DealUpdated,
    EventData,
    Intent,
    LeadCreated,
    LeadQualified,
    OrderCreated,
    OrderLine,
    OrderStatus,
    OrderUpdated,
    Outcome,
    ScoreReason,
)
from schemas.generate import CONSUMED_BY
from services.marketing.commands import MarketingCommand
from services.orders.commands import OrdersCommand
from services.sales.commands import SalesCommand
from services.sales.domain.assignment import DeskRequest
from services.webhooks.commands import CreateSubscription, WebhooksCommand
from services.webhooks.domain.subscriptions import SECRET_PREFIX, Filter, new_subscription
from tests.system import Worker

MAX_VALUE = 900 * 1024  # the largest poison value: under Kafka's 1 MiB with room for dlq.* headers
DLQ_NAMES = (
    topics.DLQ_ERROR,
    topics.DLQ_ERROR_TYPE,
    topics.DLQ_ORIGIN_TOPIC,
    topics.DLQ_ORIGIN_PARTITION,
    topics.DLQ_ORIGIN_OFFSET,
    topics.DLQ_FAILED_BY,
    topics.DLQ_FAILED_AT,
)

Json = dict[str, Any]
Valid = Callable[[random.Random], tuple[bytes | None, Json]]  # a valid record and its key
Path = tuple[str | int, ...]  # a path into a record


@dataclass(frozen=True)
class Target:
    """A consumed topic: who reads it and what a valid record on it looks like."""

    topic: str
    consumers: tuple[str, ...]
    shape: str  # "event", "command" or "desk"
    # What every consumer of the topic validates a record with (see refusal).
    model: Any
    valid: Valid
    # Where a valid record's key is checked against its content (events).
    keyed: bool
    # A path into the record holding a literal or enum, for values that cannot be right.
    literal: tuple[str, ...]
    # Paths to money in the record, if it carries any.
    money: tuple[Path, ...] = ()


def targets() -> list[Target]:
    """Every topic the services consume, with all its consumers, under their default app
    ids: the public events as schemas/generate.py's CONSUMED_BY has them (tests/unit/contract
    holds each service's code to it), and each service's own topics (services/*/topics.py)."""
    ids = {s: f"leadflow-{s}" for s in ("marketing", "sales", "orders", "webhooks")}
    event, command = ("specversion",), ("kind",)
    events = [
        Target(
            topic,
            CONSUMED_BY[topic],
            "event",
            CloudEvent[EVENT_DATA[topic]],  # type: ignore[valid-type]
            valid,
            keyed=True,
            literal=event,
            money=money,
        )
        for topic, (valid, money) in _EVENTS.items()
    ]
    return [
        *events,
        Target(
            f"{ids['marketing']}-commands", ("marketing",), "command", MarketingCommand, _marketing_command,
            keyed=False, literal=command, money=(("budget", "amount"),),
        ),
        Target(
            f"{ids['sales']}-commands", ("sales",), "command", SalesCommand, _sales_command, keyed=False,
            literal=command, money=(("lines", 0, "discount_percent"),),
        ),
        Target(
            f"{ids['sales']}-assignment-requests", ("sales",), "desk", DeskRequest, _desk_request,
            keyed=False, literal=command,
        ),
        Target(
            f"{ids['orders']}-commands", ("orders",), "command", OrdersCommand, _orders_command,
            keyed=False, literal=command,
        ),
        Target(
            f"{ids['webhooks']}-commands", ("webhooks",), "command", WebhooksCommand, _webhooks_command,
            keyed=False, literal=command,
        ),
    ]  # fmt: skip


# -- valid records to break ---------------------------------------------------------


def _lead_id(rng: random.Random) -> str:
    return f"poison-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"


def _now() -> datetime:
    return datetime.now(UTC)


def _event(data: EventData, source: str, lead_id: str) -> tuple[bytes | None, Json]:
    event = new_event(data, source=source, subject=lead_id)
    return lead_id.encode(), json.loads(event.to_json())


def _customer() -> Customer:
    return Customer(company=Company(name="Poison AG"), contact=Contact(email="p@poison.io", name="P"))


def _lead_created(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    data = LeadCreated(
        lead_id=lead_id,
        campaign_id=None,
        channel=Channel.EVENT,
        contact=Contact(email=f"{lead_id}@poison.io", name="P"),
        company=Company(name="Poison AG", size=800, country="DE"),
        consent=True,
        intent=Intent.DEMO_REQUEST,
        captured_at=_now(),
    )
    return _event(data, "/leadflow/marketing", lead_id)


def _lead_qualified(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    data = LeadQualified(
        lead_id=lead_id,
        campaign_id=None,
        score=75,
        threshold=60,
        reasons=[ScoreReason(rule="intent.demo_request", points=40, detail="asked for a demo")],
        contact=Contact(email=f"{lead_id}@poison.io", name="P"),
        company=Company(name="Poison AG", country="DE"),
        qualified_at=_now(),
    )
    return _event(data, "/leadflow/marketing", lead_id)


def _deal_updated(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    now = _now()
    data = DealUpdated(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id=None,
        changes=[DealChange.STAGE_CHANGED, DealChange.FIRST_CONTACT],
        stage=DealStage.PRESENTING,
        previous_stage=DealStage.QUALIFYING,
        owner="rep-poison",
        opened_at=now,
        stage_entered_at=now,
        first_contact_at=now,
        follow_up_due_at=now,
        amount=Decimal("12000.00"),
        currency="EUR",
        updated_at=now,
    )
    return _event(data, "/leadflow/sales", lead_id)


def _deal_closed(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    now = _now()
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id=None,
        outcome=Outcome.WON,
        owner="rep-poison",
        customer=_customer(),
        lines=[DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("12000.00"))],
        amount=Decimal("12000.00"),
        currency="EUR",
        opened_at=now,
        first_contact_at=now,
        closed_at=now,
    )
    return _event(data, "/leadflow/sales", lead_id)


def _order_created(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    price = Decimal("12000.00")
    data = OrderCreated(
        order_id=f"order-{lead_id}",
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        customer=_customer(),
        lines=[OrderLine(sku="LF-CORE", name="Core", quantity=1, unit_price=price, line_total=price)],
        total=price,
        currency="EUR",
        created_at=_now(),
    )
    return _event(data, "/leadflow/orders", lead_id)


def _order_updated(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    data = OrderUpdated(
        order_id=f"order-{lead_id}",
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        status=OrderStatus.CONFIRMED,
        previous_status=OrderStatus.CREATED,
        total=Decimal("12000.00"),
        currency="EUR",
        updated_at=_now(),
    )
    return _event(data, "/leadflow/orders", lead_id)


# Each public event: a valid record of it, and the paths to its money.
_EVENTS: dict[str, tuple[Valid, tuple[Path, ...]]] = {
    topics.LEAD_CREATED: (_lead_created, ()),
    topics.LEAD_QUALIFIED: (_lead_qualified, ()),
    topics.DEAL_UPDATED: (_deal_updated, (("data", "amount"),)),
    topics.DEAL_CLOSED: (_deal_closed, (("data", "amount"), ("data", "lines", 0, "unit_price"))),
    topics.ORDER_CREATED: (
        _order_created,
        (("data", "total"), ("data", "lines", 0, "unit_price"), ("data", "lines", 0, "line_total")),
    ),
    topics.ORDER_UPDATED: (_order_updated, (("data", "total"),)),
}


def _command_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _marketing_command(rng: random.Random) -> tuple[bytes | None, Json]:
    campaign_id = _lead_id(rng)
    command = {
        "command_id": _command_id(rng),
        "kind": "create_campaign",
        "campaign_id": campaign_id,
        "name": "poison",
        "channel": "event",
        "budget": {"amount": "5000.00", "currency": "EUR"},
        "starts_on": "2026-03-01",
        "ends_on": "2026-03-31",
        "target": {"industries": [], "countries": [], "company_size": None},
    }
    return campaign_id.encode(), command


def _sales_command(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    command = {
        "command_id": _command_id(rng),
        "kind": "close_deal",
        "lead_id": lead_id,
        "outcome": "won",
        "lines": [{"sku": "LF-CORE", "quantity": 1, "discount_percent": "5"}],
        "lost_reason": None,
    }
    return lead_id.encode(), command


def _orders_command(rng: random.Random) -> tuple[bytes | None, Json]:
    lead_id = _lead_id(rng)
    command = {
        "command_id": _command_id(rng),
        "kind": "change_status",
        "lead_id": lead_id,
        "status": "confirmed",
    }
    return lead_id.encode(), command


def _webhooks_command(rng: random.Random) -> tuple[bytes | None, Json]:
    # A subscription as POST /subscriptions makes one (services/webhooks/views.py).
    subscription_id = f"sub_{uuid.UUID(int=rng.getrandbits(128)).hex}"
    subscription = new_subscription(
        subscription_id,
        url="https://hooks.poison.io/leadflow",
        event_types=["deal.closed"],
        flt=Filter(),
        description="poison",
        secret=SECRET_PREFIX + base64.b64encode(rng.randbytes(32)).decode(),
        now=_now(),
        by="poison",
    )
    command = CreateSubscription(
        command_id=_command_id(rng), subscription_id=subscription_id, subscription=subscription
    )
    return subscription_id.encode(), json.loads(command.model_dump_json())


def _desk_request(rng: random.Random) -> tuple[bytes | None, Json]:
    # A valid request of the shipped roster's DACH desk, before it is broken.
    desk = "desk:AT,CH,DE"
    request = {
        "kind": "place",
        "desk": desk,
        "lead_id": _lead_id(rng),
        "country": "DE",
        "requested_at": _now().isoformat(),
    }
    return desk.encode(), request


# -- ways to break them ---------------------------------------------------------------


@dataclass
class Poison:
    topic: str
    kind: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


Breaker = Callable[[random.Random, Target, bytes | None, Json], tuple[bytes | None, bytes | None]]


def _dump(record: Any) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def _leaves(record: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, record
    if isinstance(record, dict):
        for k, v in record.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(record, list):
        for i, v in enumerate(record):
            yield from _leaves(v, (*path, i))


def _set(record: Json, path: Path, value: Any) -> Json:
    changed = copy.deepcopy(record)
    node: Any = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return changed


def _drop_required(rng: random.Random, record: Json) -> Json:
    # Every top-level field the templates carry is required, but command_id and a
    # command's kind, which have defaults.
    name = rng.choice([k for k in record if k not in ("command_id", "kind")])
    return {k: v for k, v in record.items() if k != name}


def not_json(rng: random.Random, t: Target, key: bytes | None, record: Json) -> tuple[bytes | None, bytes]:
    garbage = [b"{not json", b"<lead id='1'/>", b"\x00\x01\x02\x03", b'{"a":', b"NaN", b"'single'", b"{}}"]
    return key, rng.choice([*garbage, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))) + b"\xff"])


def not_an_object(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    return key, rng.choice([b"[]", b"null", b"42", b'"text"', b"true", _dump([record])])


def wrong_types(rng: random.Random, t: Target, key: bytes | None, record: Json) -> tuple[bytes | None, bytes]:
    # Shapes no lax coercion turns into the right one: a scalar becomes a container and
    # a container a scalar ("75" would pass for an int, a number for a datetime).
    path, value = rng.choice([(p, v) for p, v in _leaves(record) if p and p[-1] != "command_id"])
    if isinstance(value, dict | list):
        wrong: Any = rng.choice([7, "text", True])
    elif value is None:
        wrong = rng.choice([[None], []])  # a dict could pass for an optional model of optional fields
    else:
        wrong = rng.choice([{"$": value}, [value], []])
    return key, _dump(_set(record, path, wrong))


def huge_value(
    rng: random.Random, t: Target, key: bytes | None, record: Json, size: int = MAX_VALUE
) -> tuple[bytes | None, bytes]:
    if rng.random() < 0.5:
        return key, (b"[" + b"9," * (size // 2))[:size]  # a truncated array: not JSON
    # A string as long as the record allows, in a field that takes only a few words.
    value = _dump(_set(record, t.literal, ""))
    return key, _dump(_set(record, t.literal, "x" * max(1, size - len(value))))


def wrong_key(rng: random.Random, t: Target, key: bytes | None, record: Json) -> tuple[bytes | None, bytes]:
    if t.keyed:
        return _lead_id(rng).encode(), _dump(record)  # valid, but keyed by someone else
    return _lead_id(rng).encode(), _dump(_drop_required(rng, record))


def null_key(rng: random.Random, t: Target, key: bytes | None, record: Json) -> tuple[bytes | None, bytes]:
    return None, _dump(record if t.keyed else _drop_required(rng, record))


def unknown_type(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    if t.shape == "event":
        # Unknown anywhere, or the type of another topic's events (whose data this is not).
        other = rng.choice([name for name in topics.EVENT_TOPICS if name != t.topic])
        return key, _dump(
            record | {"type": rng.choice(["deal.reopened", "lead.deleted", "", "DEAL.CLOSED", other])}
        )
    return key, _dump(record | {"kind": rng.choice(["drop_tables", "", "CREATE_CAMPAIGN", "place "])})


def unknown_version(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    version = rng.choice(["v2", "v99", "v0", "v1.1", ""])
    return key, _dump(record | {"dataschema": f"urn:leadflow:schema:{t.topic}:{version}"})


def deep_nesting(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    depth = rng.choice([300, 5_000, 20_000])
    path, _ = rng.choice([(p, v) for p, v in _leaves(record) if p])
    marker = "__nest__"
    text = _dump(_set(record, path, marker))
    return key, text.replace(b'"' + marker.encode() + b'"', b"[" * depth + b"]" * depth)


def empty(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes | None]:
    return key, rng.choice([b"", None])  # an empty value, and a tombstone


def invalid_utf8(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80"])
    if t.keyed and rng.random() < 0.3:
        return bad + (key or b""), _dump(record)  # the key is not the subject's UTF-8
    path, _ = rng.choice([(p, v) for p, v in _leaves(record) if isinstance(v, str) and p[-1] != "command_id"])
    marker = "__utf8__"
    return key, _dump(_set(record, path, marker)).replace(marker.encode(), bad)


def wrong_specversion(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    return key, _dump(record | {"specversion": rng.choice(["0.3", "2.0", 1.0, None, "1.0 ", "1"])})


def float_money(rng: random.Random, t: Target, key: bytes | None, record: Json) -> tuple[bytes | None, bytes]:
    return key, _dump(_set(record, rng.choice(t.money), rng.choice([12000.0, 0.1 + 0.2, 1e300, -5.5])))


def lead_mismatch(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    """Valid, but not keyed by its lead: each would put a lead's state on a partition
    other than the one its key chose, or a state no key finds."""
    lead_id = record["subject"]
    match rng.randrange(3):
        case 0:  # a key that is not UTF-8, matching the subject only if decoded with replacement
            replaced = "\ufffd" + lead_id
            renamed = {"subject": replaced, "data": record["data"] | {"lead_id": replaced}}
            return b"\xff" + lead_id.encode(), _dump(record | renamed)
        case 1:  # no key, an empty subject and lead
            return None, _dump(record | {"subject": "", "data": record["data"] | {"lead_id": ""}})
        case _:  # keyed and subject by one lead, the data of another
            return key, _dump(record | {"data": record["data"] | {"lead_id": _lead_id(rng)}})


def forged_headers(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    return not_json(rng, t, key, record)  # the headers are the point: see generate()


def time_overflow(
    rng: random.Random, t: Target, key: bytes | None, record: Json
) -> tuple[bytes | None, bytes]:
    # Valid RFC 3339, but past year 9999 once converted to UTC: not a ValueError.
    return key, _dump(record | {"time": "9999-12-31T23:59:59-14:00"})


ANY = frozenset({"event", "command", "desk"})
EVENTS = frozenset({"event"})

# Each way to break a record, and the shapes of record it applies to (float money
# only where there is money; see kinds_for).
BREAKERS: dict[str, tuple[Breaker, frozenset[str]]] = {
    "not_json": (not_json, ANY),
    "not_an_object": (not_an_object, ANY),
    "wrong_types": (wrong_types, ANY),
    "huge_value": (huge_value, ANY),
    "wrong_key": (wrong_key, ANY),
    "null_key": (null_key, ANY),
    "unknown_type": (unknown_type, ANY),
    "unknown_version": (unknown_version, EVENTS),
    "deep_nesting": (deep_nesting, ANY),
    "empty": (empty, ANY),
    "invalid_utf8": (invalid_utf8, ANY),
    "wrong_specversion": (wrong_specversion, EVENTS),
    "float_money": (float_money, ANY),
    "forged_headers": (forged_headers, ANY),
    "time_overflow": (time_overflow, EVENTS),
    "lead_mismatch": (lead_mismatch, EVENTS),
}

# What the DLQ must say for kinds whose reason is certain.
EXPECTED_ERROR = {
    ("event", "wrong_key"): "record key is not the event subject",
    ("event", "null_key"): "record key is not the event subject",
    ("event", "time_overflow"): "date value out of range",
}


def kinds_for(target: Target) -> list[str]:
    return [
        kind
        for kind, (_, shapes) in BREAKERS.items()
        if target.shape in shapes and (kind != "float_money" or target.money)
    ]


def generate(count: int, seed: int, *, max_huge: int = 2) -> list[Poison]:
    """`count` poison records spread evenly over the consumed topics, each topic going
    through every way to break its records in turn; at most `max_huge` values of
    more than 64 KB per topic (one of them ~900 KB), which keeps the run's bytes modest."""
    rng = random.Random(seed)
    chosen = targets()
    records: list[Poison] = []
    huge: Counter[str] = Counter()
    turn: Counter[str] = Counter()
    for index in range(count):
        target = chosen[index % len(chosen)]
        kinds = kinds_for(target)
        kind = kinds[turn[target.topic] % len(kinds)]
        turn[target.topic] += 1
        if kind == "huge_value" and huge[target.topic] >= max_huge:
            kind = "wrong_types"
        key, record = target.valid(rng)
        value: bytes | None
        if kind == "huge_value":
            # The first one per topic as big as allowed, the others anywhere up to it.
            size = MAX_VALUE if huge[target.topic] == 0 else rng.randint(64 * 1024 + 1, MAX_VALUE)
            new_key, value = huge_value(rng, target, key, record, size)
        else:
            new_key, value = BREAKERS[kind][0](rng, target, key, record)
        huge[target.topic] += kind == "huge_value"
        headers = [("content-type", b"application/cloudevents+json"), ("poison.kind", kind.encode())]
        if kind == "forged_headers":
            headers += [
                (topics.DLQ_ORIGIN_OFFSET, b"0"),
                (topics.DLQ_ORIGIN_TOPIC, b"somewhere.else"),
                (topics.DLQ_FAILED_BY, b"nobody"),
                ("binary", bytes(range(256))),
            ]
        records.append(Poison(target.topic, kind, new_key, value, headers))
    return records


# -- the consumers' own verdict ---------------------------------------------------------


def refusal(target: Target, key: bytes | None, value: bytes | None) -> str | None:
    """Why the consumers of the target refuse this record, or None if they would take it:
    the generator's own check that it sends poison, not records to process.

    Every consumer of a topic runs the same check (read in the services' code): an event
    goes through services/runtime/events.py `consume` in marketing, sales, orders and
    webhooks alike, a command through `Commands.serve` (services/runtime/commands.py), a
    desk request through sales' `assign_deals`. Each validates with its model, then
    compares the record key with the subject, command key or desk."""
    try:
        record = TypeAdapter(target.model).validate_json(value or b"")
    except ValueError as refused:  # pydantic's ValidationError included
        return f"{type(refused).__name__}: {str(refused)[:200]}"
    except Exception as refused:  # what consume and the desk dead-letter too
        # Commands.serve dead-letters only a ValueError: anything else stops its agent.
        if target.shape == "command":
            raise
        return f"{type(refused).__name__}: {str(refused)[:200]}"
    if target.shape == "event":
        # As consume compares them: the key must be the subject's exact bytes, and the
        # subject the data's lead_id.
        try:
            if key != record.subject.encode():
                return "record key is not the event subject"
        except UnicodeEncodeError as refused:
            return f"UnicodeEncodeError: {refused}"
        if record.data.lead_id != record.subject:
            return "event subject is not its data's lead_id"
        return None
    own = record.desk if target.shape == "desk" else record.key
    return None if own.encode() == key else "record key is not the request's desk or the command's key"


# -- sending and reading back ---------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    poison: Poison
    partition: int
    offset: int


def send(bootstrap: str, records: list[Poison]) -> list[Sent]:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=1024 * 1024
    )
    try:
        futures = [(p, producer.send(p.topic, key=p.key, value=p.value, headers=p.headers)) for p in records]
        producer.flush(timeout=120)
        sent = []
        for poison, future in futures:
            metadata = future.get(timeout=60)
            sent.append(Sent(poison, metadata.partition, metadata.offset))
        return sent
    finally:
        producer.close()


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)

    @property
    def origin(self) -> tuple[str, int, int, str]:
        """(origin topic, partition, offset, failed by)."""
        return (
            (self.header(topics.DLQ_ORIGIN_TOPIC) or b"").decode(),
            int(self.header(topics.DLQ_ORIGIN_PARTITION) or -1),
            int(self.header(topics.DLQ_ORIGIN_OFFSET) or -1),
            (self.header(topics.DLQ_FAILED_BY) or b"").decode(),
        )


def end_offsets(bootstrap: str, names: list[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        existing = consumer.topics()  # loads the metadata partitions_for_topic needs
        missing = set(names) - existing
        assert not missing, f"no such topics: {missing}"
        partitions = [TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or []]
        return dict(consumer.end_offsets(partitions))
    finally:
        consumer.close()


def collect(
    bootstrap: str,
    start: dict[TopicPartition, int],
    expected: set[tuple[str, int, int, str]],
    *,
    timeout: float,
) -> dict[tuple[str, int, int, str], list[DeadLetter]]:
    """Dead letters written since `start`, by origin, read until every expected
    origin (topic, partition, offset, failed by) has one, or `timeout`."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=2 * 1024 * 1024
    )
    found: dict[tuple[str, int, int, str], list[DeadLetter]] = defaultdict(list)
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while not expected <= found.keys() and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=2000).values():
                for m in batch:
                    letter = DeadLetter(m.partition, m.offset, m.key, m.value, list(m.headers or []))
                    found[letter.origin].append(letter)
        return dict(found)
    finally:
        consumer.close()


@dataclass
class Verdict:
    """What became of the poison, per topic and consumer."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_lettered: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{'topic':42} {'consumer':10} {'sent':>7} {'dead-lettered':>14} {'dups':>5}"]
        for topic, consumer in sorted(self.sent):
            k = (topic, consumer)
            lines.append(
                f"{topic:42} {consumer:10} {self.sent[k]:7} {self.dead_lettered[k]:14} {self.duplicates[k]:5}"
            )
        return "\n".join(lines)


def check(
    sent: list[Sent],
    letters: dict[tuple[str, int, int, str], list[DeadLetter]],
    consumers: Mapping[str, tuple[str, ...]],
) -> Verdict:
    """Every sent record dead-lettered by every consumer of its topic, byte for byte,
    with truthful dlq.* headers (each once) and its own headers kept."""
    outcome = Verdict()
    shapes = {t.topic: t.shape for t in targets()}
    for s in sent:
        p = s.poison
        for consumer in consumers[p.topic]:
            outcome.sent[(p.topic, consumer)] += 1
            copies = letters.get((p.topic, s.partition, s.offset, consumer), [])
            where = f"{p.topic}/{s.partition}@{s.offset} ({p.kind}, {consumer})"
            if not copies:
                outcome.problems.append(f"not dead-lettered: {where}")
                continue
            outcome.dead_lettered[(p.topic, consumer)] += 1
            outcome.duplicates[(p.topic, consumer)] += len(copies) - 1
            letter = copies[0]
            if (letter.key, letter.value) != (p.key, p.value):
                outcome.problems.append(f"not byte for byte: {where}")
            names = [k for k, _ in letter.headers]
            for name in DLQ_NAMES:
                if names.count(name) != 1:
                    outcome.problems.append(f"{name} {names.count(name)} times: {where}")
            if not letter.header(topics.DLQ_ERROR) or not letter.header(topics.DLQ_ERROR_TYPE):
                outcome.problems.append(f"no error or error type: {where}")
            at = datetime.fromisoformat((letter.header(topics.DLQ_FAILED_AT) or b"").decode() or "x")
            if at.tzinfo is None:
                outcome.problems.append(f"dlq.failed.at without a timezone: {where}")
            kept = [(k, v) for k, v in letter.headers if not k.startswith("dlq.")]
            own = [(k, v) for k, v in p.headers if not k.startswith("dlq.")]
            if kept != own:
                outcome.problems.append(f"own headers not kept: {where}: {kept} != {own}")
            reason = EXPECTED_ERROR.get((shapes[p.topic], p.kind))
            if reason and reason not in (letter.header(topics.DLQ_ERROR) or b"").decode(errors="replace"):
                outcome.problems.append(f"dlq.error does not say {reason!r}: {where}")
    return outcome


def crash_lines(worker: Worker, since: int) -> list[str]:
    """What Faust logs, from byte `since` of the worker's log on, when an agent, the
    producer or the worker itself crashes (a refused record is only a warning)."""
    with worker.log_path.open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    return [line for line in text.splitlines() if "Crashed reason=" in line or " CRITICAL " in line]
