"""Poison on every topic the services consume (issue #9, item 4): each record lands
in `<topic>.dlq` of every service that reads the topic, byte for byte, with the
dlq.* headers telling the truth about its origin; no worker crashes, all stay
ready, and a valid lead still goes through to an order afterwards.

About 300 records here, on a broker and workers of this module's own (poison on
the session's topics would meet every later reader); `python -m
tests.integration.bad_input.full` sends 10,000.
"""

import json
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from schemas import subscriber, topics
from tests.deploy.chart import TOPOLOGY_FILE
from tests.integration.bad_input import poison
from tests.integration.bad_input.journey import lead_to_order, start_own_system, stop_own_system, urls_of
from tests.system import PORT_BASE, TEST_KAFKA_PORT, Worker, api

COUNT = 300
SEED = 9
KAFKA_PORT = TEST_KAFKA_PORT + 400
FIRST_WEB_PORT = PORT_BASE + 61


@dataclass
class Run:
    bootstrap: str
    workers: dict[str, Worker]
    sent: list[poison.Sent]
    verdict: poison.Verdict
    log_offsets: dict[str, int]


def consumers() -> dict[str, tuple[str, ...]]:
    return {t.topic: t.consumers for t in poison.targets()}


@pytest.fixture(scope="module")
def poisoned() -> Iterator[Run]:
    broker, workers = start_own_system(KAFKA_PORT, FIRST_WEB_PORT)
    try:
        log_offsets = {name: w.log_path.stat().st_size for name, w in workers.items()}
        readers = consumers()
        start = poison.end_offsets(broker.bootstrap, [topics.dead_letter_topic(t) for t in readers])
        sent = poison.send(broker.bootstrap, poison.generate(COUNT, SEED))
        expected = {(s.poison.topic, s.partition, s.offset, c) for s in sent for c in readers[s.poison.topic]}
        letters = poison.collect(broker.bootstrap, start, expected, timeout=90)
        yield Run(broker.bootstrap, workers, sent, poison.check(sent, letters, readers), log_offsets)
    finally:
        stop_own_system(broker, workers)


def test_the_generator_covers_every_topic_each_service_consumes_starting_from_valid_records() -> None:
    # topology.yaml is each service's topics as its code declares them (tests/deploy keeps it so).
    services = yaml.safe_load(TOPOLOGY_FILE.read_text())["services"]
    declared = {
        (topic, service)
        for service, own in services.items()
        for topic in [*own["consumes"], *(f"leadflow-{service}-{suffix}" for suffix in own["internal"])]
    }
    assert {(t.topic, c) for t in poison.targets() for c in t.consumers} == declared
    assert consumers()[topics.DEAL_CLOSED] == ("marketing", "orders", "webhooks")
    assert consumers()[topics.LEAD_CREATED] == ("webhooks",)
    # Each record starts valid: what breaks it is the generator's doing, not the template.
    rng = random.Random(SEED)
    for target in poison.targets():
        key, record = target.valid(rng)
        assert poison.refusal(target, key, json.dumps(record).encode()) is None, target.topic


def test_the_generator_breaks_every_record_in_every_way_the_consumers_must_refuse() -> None:
    records = poison.generate(COUNT, SEED)
    by_topic = {t.topic: t for t in poison.targets()}
    accepted = [
        (r.topic, r.kind) for r in records if poison.refusal(by_topic[r.topic], r.key, r.value) is None
    ]
    assert accepted == []
    for target in by_topic.values():
        kinds = {r.kind for r in records if r.topic == target.topic}
        assert kinds == set(poison.kinds_for(target)), target.topic
        sizes = [len(r.value or b"") for r in records if r.topic == target.topic]
        assert poison.MAX_VALUE - 16 <= max(sizes) <= poison.MAX_VALUE, target.topic


def test_the_check_notices_a_lost_altered_or_mislabelled_dead_letter() -> None:
    record = poison.Poison("lead.qualified", "not_json", b"k", b"{not json", [("trace", b"1")])
    sent = [poison.Sent(record, 2, 7)]
    good = poison.DeadLetter(
        0,
        0,
        b"k",
        b"{not json",
        [
            (topics.DLQ_ERROR, b"Invalid JSON"),
            (topics.DLQ_ERROR_TYPE, b"ValidationError"),
            (topics.DLQ_ORIGIN_TOPIC, b"lead.qualified"),
            (topics.DLQ_ORIGIN_PARTITION, b"2"),
            (topics.DLQ_ORIGIN_OFFSET, b"7"),
            (topics.DLQ_FAILED_BY, b"sales"),
            (topics.DLQ_FAILED_AT, b"2026-01-01T00:00:00+00:00"),
            ("trace", b"1"),
        ],
    )
    origin = ("lead.qualified", 2, 7, "sales")
    readers = {"lead.qualified": ("sales",)}
    assert poison.check(sent, {origin: [good]}, readers).problems == []
    assert poison.check(sent, {}, readers).problems == [
        "not dead-lettered: lead.qualified/2@7 (not_json, sales)"
    ]
    # Dead-lettered by sales, but not by webhooks, which reads the topic too.
    both = {"lead.qualified": ("sales", "webhooks")}
    assert poison.check(sent, {origin: [good]}, both).problems == [
        "not dead-lettered: lead.qualified/2@7 (not_json, webhooks)"
    ]
    altered = poison.DeadLetter(0, 0, b"k", b"{not jso", good.headers)
    assert "not byte for byte" in poison.check(sent, {origin: [altered]}, readers).problems[0]
    forged = poison.DeadLetter(0, 0, b"k", b"{not json", [*good.headers, (topics.DLQ_ORIGIN_OFFSET, b"0")])
    assert "dlq.origin.offset 2 times" in poison.check(sent, {origin: [forged]}, readers).problems[0]
    unkept = poison.DeadLetter(0, 0, b"k", b"{not json", good.headers[:-1])
    assert "own headers not kept" in poison.check(sent, {origin: [unkept]}, readers).problems[0]


# The system is this module's own: tests/conftest.py cannot mark these from their fixtures.
@pytest.mark.broker
@pytest.mark.slow
def test_every_poison_record_is_dead_lettered_by_every_service_that_reads_its_topic(poisoned: Run) -> None:
    verdict = poisoned.verdict
    table = verdict.table()
    print(table)
    assert sum(verdict.sent.values()) >= COUNT
    assert verdict.sent.keys() == {(t, c) for t, cs in consumers().items() for c in cs}
    assert verdict.dead_lettered == verdict.sent, table
    assert verdict.problems == [], "\n".join(verdict.problems[:50])
    assert sum(verdict.duplicates.values()) == 0, table


@pytest.mark.broker
@pytest.mark.slow
def test_no_worker_crashed_and_every_worker_is_ready_after_the_poison(poisoned: Run) -> None:
    for name, worker in poisoned.workers.items():
        assert worker.process is not None
        assert worker.process.poll() is None, worker.tail()
        assert poison.crash_lines(worker, poisoned.log_offsets[name]) == [], name
        assert api.get(f"{worker.url}/readyz", timeout=10).status_code == 200, name


@pytest.mark.broker
@pytest.mark.slow
def test_a_valid_lead_still_goes_from_capture_to_order_after_the_poison(poisoned: Run) -> None:
    lead_to_order(urls_of(poisoned.workers))


@pytest.mark.broker
@pytest.mark.slow
def test_the_subscriber_tool_skips_and_reports_every_poison_record_on_the_event_topics(poisoned: Run) -> None:
    event_topics = [t.topic for t in poison.targets() if t.shape == "event"]
    expected = {
        (s.poison.topic, s.partition, s.offset) for s in poisoned.sent if s.poison.topic in event_topics
    }
    reported: set[tuple[str, int, int]] = set()
    delivered: list[dict[str, object]] = []
    stop = threading.Event()

    def report(line: str) -> None:
        # "skipped <topic> partition <p> offset <o>: <reason>"
        words = line.split()
        reported.add((words[1], int(words[3]), int(words[5].rstrip(":"))))
        if expected <= reported:
            stop.set()

    group = f"it-poison-subscriber-{uuid.uuid4().hex[:8]}"
    consumer = subscriber.Subscription(event_topics, poisoned.bootstrap, group, from_beginning=True).connect()
    timer = threading.Timer(90, stop.set)
    timer.start()
    try:
        subscriber.run(consumer, subscriber.EventValidator(), delivered.append, report=report, stop=stop)
    finally:
        timer.cancel()
        consumer.close(autocommit=False)
    assert sorted(expected - reported) == []
    assert [e["id"] for e in delivered if str(e["subject"]).startswith("poison-")] == []
