"""What the system shows from outside once it has drained: the records on the
event and dead-letter topics (read with kafka-python, as any subscriber would)
and the services' HTTP APIs. Nothing here imports a service."""

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from schemas.topics import DLQ_SUFFIX, EVENT_TOPICS
from tests.chaos.check import LOST, WON, Event, Observed, Truth
from tests.chaos.load import Client, Judgement
from tests.chaos.supervisor import SERVICES

GROUPS = [f"leadflow-{service}" for service in SERVICES]
# Per-id lookups that confirm what a list did not show, at most this many.
CONFIRMATIONS = 50
# Seconds for one try of a list of every lead, deal or order of the run.
LIST_TIMEOUT = 120.0


Lag = dict[str, dict[str, int]]


@dataclass
class Drain:
    seconds: float
    # Per group, the records it has not committed on each partition that has any,
    # at the end; None if the broker did not say.
    lag: Lag | None
    # End offsets of the event and dead-letter topics, at the end.
    records: int
    drained: bool


def _dead_letter_topics(consumer: KafkaConsumer) -> list[str]:
    return sorted(t for t in consumer.topics() if t.endswith(DLQ_SUFFIX))


def _end_offsets(consumer: KafkaConsumer, topics: list[str]) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
    return dict(consumer.end_offsets(partitions)) if partitions else {}


def _lag(admin: KafkaAdminClient, consumer: KafkaConsumer) -> Lag | None:
    """Uncommitted records of each service's group on what it consumes (changelogs
    aside: Faust reads those for recovery and commits nothing there)."""
    try:
        committed = admin.list_group_offsets(GROUPS)
    except KafkaError:
        return None  # the group coordinator is moving (the broker restarted): ask again
    lag: Lag = {}
    for group, offsets in committed.items():
        streamed = {tp: o.offset for tp, o in offsets.items() if not tp.topic.endswith("-changelog")}
        ends = consumer.end_offsets(list(streamed)) if streamed else {}
        behind = {tp: ends[tp] - max(offset, 0) for tp, offset in sorted(streamed.items())}
        lag[group] = {f"{tp.topic}[{tp.partition}]": n for tp, n in behind.items() if n > 0}
    return lag


def wait_drained(bootstrap: str, *, quiet: float, timeout: float) -> Drain:
    """Until the topics stop growing for `quiet` s and every group has committed
    all it consumes, or `timeout`; then what was left."""
    started = time.monotonic()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        last: tuple[int, Lag | None] | None = None
        still_since = started
        while True:
            topics = [*EVENT_TOPICS, *_dead_letter_topics(consumer)]
            snapshot = (sum(_end_offsets(consumer, topics).values()), _lag(admin, consumer))
            now = time.monotonic()
            if snapshot != last:
                last, still_since = snapshot, now
            records, lag = snapshot
            # Commits trail the work by a few seconds; once they caught up, a short
            # stillness is enough. A group stuck short of the end waits out `quiet`.
            caught_up = lag is not None and not any(lag.values())
            needed = quiet / 3 if caught_up else quiet
            if now - still_since >= needed or now - started > timeout:
                return Drain(now - started, lag, records, drained=now - started <= timeout)
            time.sleep(1.0)
    finally:
        consumer.close()
        admin.close()


@dataclass
class Records:
    events: list[Event] = field(default_factory=list)
    dead_letters: dict[str, int] = field(default_factory=dict)
    # A few dead letters with their headers: why and where from.
    dead_letter_samples: list[dict[str, Any]] = field(default_factory=list)


def read_records(bootstrap: str, timeout: float = 120.0) -> Records:
    """Every record of the event topics and of every dead-letter topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000)
    found = Records()
    try:
        dead_letter_topics = _dead_letter_topics(consumer)
        ends = _end_offsets(consumer, [*EVENT_TOPICS, *dead_letter_topics])
        consumer.assign(list(ends))
        consumer.seek_to_beginning(*ends)
        letters: Counter[str] = Counter(dict.fromkeys(dead_letter_topics, 0))
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read the topics to their end in {timeout:.0f}s")
            for batch in consumer.poll(timeout_ms=500).values():
                for message in batch:
                    if message.offset >= ends[TopicPartition(message.topic, message.partition)]:
                        continue  # written after we looked: not part of this reading
                    if message.topic.endswith(DLQ_SUFFIX):
                        letters[message.topic] += 1
                        if len(found.dead_letter_samples) < 10:
                            found.dead_letter_samples.append(_dead_letter(message))
                    else:
                        found.events.append(_event(message))
        found.dead_letters = dict(letters)
        return found
    finally:
        consumer.close()


def _event(message: Any) -> Event:
    try:
        envelope = json.loads(message.value)
        event_id, subject = envelope.get("id"), envelope.get("subject")
    except (TypeError, ValueError, AttributeError):
        event_id = subject = None
    key = message.key.decode() if message.key is not None else subject
    return Event(message.topic, message.partition, message.offset, key, event_id)


def _dead_letter(message: Any) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key": message.key.decode(errors="replace") if message.key is not None else None,
        "headers": {k: v.decode(errors="replace") for k, v in message.headers or []},
    }


def _answered(response: httpx.Response, _: bool) -> Judgement:
    return "ack" if response.status_code in (200, 404) else "refuse"


async def read_apis(client: Client, truth: Truth) -> tuple[dict[str, str], dict[str, str], set[str], Any]:
    """Marketing's lead statuses, sales' deal stages and orders' orders (by lead
    id), and the campaign's performance."""
    lead_status: dict[str, str] = {}
    for status in (WON, LOST):
        leads = await client.list_all("marketing", "/leads", {"status": status}, try_seconds=LIST_TIMEOUT)
        lead_status |= {lead["lead_id"]: lead["status"] for lead in leads}
    deals = await client.list_all("sales", "/deals", try_seconds=LIST_TIMEOUT)
    deal_stage = {deal["lead_id"]: deal["stage"] for deal in deals}
    listed = await client.list_all("orders", "/orders", try_seconds=LIST_TIMEOUT)
    orders = {order["lead_id"] for order in listed}
    # A list is gathered from every worker; ask the owner of what it did not show.
    doubtful = [lead for lead, outcome in truth.closed.items() if lead_status.get(lead) != outcome]
    for lead in doubtful[:CONFIRMATIONS]:
        response = await client.until_acknowledged("marketing", "GET", f"/leads/{lead}", _answered)
        lead_status[lead] = response.json()["status"] if response.status_code == 200 else "missing"
    for lead in sorted(truth.won - orders)[:CONFIRMATIONS]:
        response = await client.until_acknowledged("orders", "GET", f"/orders/order-{lead}", _answered)
        if response.status_code == 200:
            orders.add(lead)
    performance = None
    if truth.campaign_id is not None:
        performance = await client.get_json("marketing", f"/campaigns/{truth.campaign_id}/performance")
    return lead_status, deal_stage, orders, performance


async def observe(client: Client, truth: Truth, records: Records) -> Observed:
    lead_status, deal_stage, orders, performance = await read_apis(client, truth)
    return Observed(
        events=records.events,
        dead_letters=records.dead_letters,
        lead_status=lead_status,
        deal_stage=deal_stage,
        orders=orders,
        performance=performance,
    )
