"""Subscribing to Leadflow's events from another system, on kafka-python.

Records are validated against the committed JSON Schemas (the file their
`dataschema` names), so a subscriber sees exactly what the contract promises.
A record that does not validate is reported and skipped: one bad record never
stops a subscriber. Offsets are committed once records are delivered, so a
subscriber that stops, or fails to forward, resumes where it left off: events
may come twice (deduplicate on the CloudEvent `id`), never not at all.
"""

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx
import jsonschema
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from schemas.envelope import CONTENT_TYPE
from schemas.generate import JSON_DIR

DATASCHEMA = re.compile(r"^urn:leadflow:schema:(?P<type>[a-z][a-z0-9.]*):v(?P<version>[1-9][0-9]*)$")

Event = dict[str, Any]


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    # jsonschema checks date-time only with an extra package; this is the rule the contract needs.
    if not isinstance(value, str):
        return True
    if "T" not in value.upper() or datetime.fromisoformat(value).tzinfo is None:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with a UTC offset")
    try:
        # RFC 3339 allows 9999-12-31T23:59:59-14:00, past year 9999 in UTC: the services
        # refuse it, and so does a subscriber's datetime library.
        datetime.fromisoformat(value).astimezone(UTC)
    except OverflowError as error:
        raise ValueError(f"{value!r} is past year 9999 in UTC") from error
    return True


class Invalid(Exception):
    """A record that is not a valid Leadflow event; the reason says why."""


class Unreachable(Exception):
    """The broker cannot be reached, or lacks a topic asked for."""


class ForwardFailed(Exception):
    """An event could not be handed on; it will be delivered again on restart."""


class Record(Protocol):
    """What a subscriber reads of a Kafka record (kafka-python's ConsumerRecord)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class EventValidator:
    """Validates record values with the JSON Schema their `dataschema` names."""

    def __init__(self, schema_dir: Path = JSON_DIR) -> None:
        self.schema_dir = schema_dir
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    def validate(self, topic: str, key: bytes | None, value: bytes | None) -> Event:
        """The event of a record of `topic`, or Invalid with the reason."""
        if value is None:
            raise Invalid("the record has no value")
        try:
            event = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise Invalid(f"the value is not JSON: {error}") from error
        except RecursionError as error:
            raise Invalid("the value is nested too deeply to read") from error
        if not isinstance(event, dict):
            raise Invalid("the value is not a JSON object (a CloudEvent)")
        if event.get("type") != topic:
            raise Invalid(f"type {event.get('type')!r} on topic {topic!r}")
        problem = jsonschema.exceptions.best_match(
            self._validator(event.get("dataschema")).iter_errors(event)
        )
        if problem is not None:
            where = ".".join(map(str, problem.absolute_path)) or "(event)"
            raise Invalid(f"{where}: {problem.message}")
        subject = event["subject"]
        # Exact bytes: the record is on the partition its key chose, the lead's own.
        if key is None or key != subject.encode(errors="surrogatepass"):
            raise Invalid(f"the record key {key!r} is not the event subject {subject!r}")
        if event["data"].get("lead_id") != subject:
            raise Invalid(f"the event subject {subject!r} is not its data's lead_id")
        return event

    def _validator(self, dataschema: object) -> jsonschema.protocols.Validator:
        name = str(dataschema)
        if name not in self._validators:
            match = DATASCHEMA.match(name)
            path = match and self.schema_dir / match["type"] / f"v{match['version']}.json"
            if not path or not path.exists():
                raise Invalid(f"unknown dataschema {dataschema!r} (no committed JSON Schema names it)")
            schema = json.loads(path.read_text())
            cls = jsonschema.validators.validator_for(schema)
            self._validators[name] = cls(schema, format_checker=FORMATS)
        return self._validators[name]


def print_to(out: TextIO) -> Callable[[Event], None]:
    """Deliver each event as one JSON line on `out`."""

    def deliver(event: Event) -> None:
        out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n")
        out.flush()

    return deliver


def forward_to(
    url: str, *, attempts: int = 3, client: httpx.Client | None = None, backoff: float = 0.5
) -> Callable[[Event], None]:
    """Deliver each event as a CloudEvents structured-mode HTTP POST to `url`, trying
    `attempts` times while the receiver is unreachable or answers 5xx/429."""
    client = client or httpx.Client(timeout=10.0)

    def deliver(event: Event) -> None:
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                answer = client.post(url, content=json.dumps(event), headers={"content-type": CONTENT_TYPE})
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if answer.is_success:
                return
            problem = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the receiver refuses it: trying again will not help
        raise ForwardFailed(f"could not forward event {event.get('id')} to {url}: {problem}")

    return deliver


@dataclass
class Subscription:
    """What to read and how."""

    topics: list[str]
    bootstrap: str
    group: str
    from_beginning: bool = False
    connect_timeout: float = 5.0

    def connect(self) -> KafkaConsumer:
        """A consumer in `group`, subscribed to `topics`; Unreachable when it cannot be."""
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap.split(","),
                group_id=self.group,
                client_id=self.group,
                # Only for a group with no committed offsets: a known group resumes.
                auto_offset_reset="earliest" if self.from_beginning else "latest",
                enable_auto_commit=False,
                bootstrap_timeout_ms=int(self.connect_timeout * 1000),
            )
        except KafkaError as error:
            raise Unreachable(
                f"cannot reach a Kafka broker at {self.bootstrap} (waited {self.connect_timeout:g}s): {error}"
            ) from error
        try:
            missing = sorted(set(self.topics) - set(consumer.topics()))
            if missing:
                raise Unreachable(f"no topic {', '.join(missing)} on the broker at {self.bootstrap}")
            consumer.subscribe(self.topics)
        except Unreachable:
            consumer.close(autocommit=False)
            raise
        except KafkaError as error:
            consumer.close(autocommit=False)
            raise Unreachable(f"the broker at {self.bootstrap} failed: {error}") from error
        return consumer


class Consumer(Protocol):
    """The part of kafka-python's KafkaConsumer a subscriber uses."""

    def poll(self, timeout_ms: int) -> Mapping[Any, Iterable[Record]]: ...
    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None: ...


def run(
    consumer: Consumer,
    validator: EventValidator,
    deliver: Callable[[Event], None],
    *,
    report: Callable[[str], None],
    stop: threading.Event,
    max_events: int | None = None,
) -> int:
    """Deliver every valid event until `stop` is set or `max_events` were delivered;
    report and skip invalid records. Returns how many events were delivered.
    Raises ForwardFailed when `deliver` does, after committing what went before."""
    delivered = 0
    done: dict[TopicPartition, OffsetAndMetadata] = {}
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        event = validator.validate(record.topic, record.key, record.value)
                    except Invalid as invalid:
                        where = f"{record.topic} partition {record.partition} offset {record.offset}"
                        report(f"skipped {where}: {invalid}")
                    else:
                        deliver(event)
                        delivered += 1
                    done[TopicPartition(record.topic, record.partition)] = OffsetAndMetadata(
                        record.offset + 1
                    )
                    if max_events is not None and delivered >= max_events:
                        return delivered
            if done:
                consumer.commit(done)
                done = {}
    finally:
        if done:
            consumer.commit(done)
    return delivered
