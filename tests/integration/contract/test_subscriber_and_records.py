"""The contract on the real broker: the subscriber tool, run as other systems run
it, receives what the running system publishes; every record on the four topics
validates against the committed JSON Schemas (or was dead-lettered by the
service that read it)."""

import json
import queue
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import IO, Any

import pytest

from schemas import generate, topics
from schemas.subscriber import EventValidator, Invalid
from tests.system import BOOTSTRAP, PORT_BASE, ROOT, Worker, api, eventually, read_topic, unique_email

# Nothing listens there: a port of this session's range that no worker uses.
UNREACHABLE = f"127.0.0.1:{PORT_BASE + 98}"


def leadflow(*args: str, **options: Any) -> subprocess.Popen[str]:
    """The `leadflow` console script, installed with the project (schemas.cli:main)."""
    script = Path(sys.executable).with_name("leadflow")
    return subprocess.Popen([str(script), *args], cwd=ROOT, text=True, **options)


def lines_of(stream: IO[str]) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def hand_raiser(marketing: Worker) -> str:
    body = {
        "channel": "web",
        "campaign_id": None,
        "contact": {"email": unique_email("subscriber"), "name": "Sam Roe", "title": "CFO", "phone": None},
        "company": {"name": "Roe GmbH", "industry": "manufacturing", "size": 250, "country": "DE"},
        "consent": True,
        "intent": "contact_sales",
    }
    response = api.post(f"{marketing.url}/leads", json=body, timeout=20)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "qualified"
    lead_id: str = response.json()["lead_id"]
    return lead_id


def close_won(sales: Worker, lead_id: str) -> dict[str, Any]:
    def deal() -> dict[str, Any] | None:
        items = api.get(f"{sales.url}/deals", params={"lead_id": lead_id}, timeout=10).json()["items"]
        return items[0] if items else None

    deal_id = eventually(deal)["deal_id"]
    closed = api.post(
        f"{sales.url}/deals/{deal_id}/close",
        json={"outcome": "won", "lines": [{"sku": "LF-CORE", "quantity": 1}]},
        timeout=20,
    )
    assert closed.status_code == 200, closed.text
    answer: dict[str, Any] = closed.json()
    return answer


def test_the_subscriber_tool_receives_a_deal_closed_produced_by_the_running_system(
    system: dict[str, Worker],
) -> None:
    group = f"it-subscriber-{uuid.uuid4().hex[:8]}"
    tool = leadflow(
        "subscribe",
        "deal.closed",
        "order.created",
        "--bootstrap",
        BOOTSTRAP,
        "--group",
        group,
        "--from-beginning",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert tool.stdout is not None
        assert tool.stderr is not None
        printed = lines_of(tool.stdout)
        lead_id = hand_raiser(system["marketing"])
        deal = close_won(system["sales"], lead_id)

        # Every line is one event; wait for this lead's deal.closed and the order it made.
        seen: dict[str, dict[str, Any]] = {}
        validator = EventValidator()
        while {"deal.closed", "order.created"} - seen.keys():
            line = printed.get(timeout=60)
            event = json.loads(line)
            assert line.endswith("\n")
            assert "\n" not in line.rstrip("\n")
            assert validator.validate(event["type"], event["subject"].encode(), line.encode()) == event
            if event["subject"] == lead_id:
                seen[event["type"]] = event
    finally:
        tool.send_signal(signal.SIGTERM)
        _, errors = tool.communicate(timeout=30)
    closed = seen["deal.closed"]
    assert closed["source"] == "/leadflow/sales"
    assert closed["data"]["deal_id"] == deal["deal_id"]
    assert closed["data"]["outcome"] == "won"
    assert closed["data"]["amount"] == deal["amount"]
    assert closed["dataschema"] == "urn:leadflow:schema:deal.closed:v1"
    assert seen["order.created"]["data"]["deal_id"] == deal["deal_id"]
    # Stopped by SIGTERM: a clean exit, no stack trace.
    assert tool.returncode == 0, errors
    assert "Traceback" not in errors
    assert f"subscribed to deal.closed, order.created at {BOOTSTRAP} as group {group}" in errors


def test_the_subscriber_tool_says_so_and_exits_non_zero_when_the_broker_is_unreachable() -> None:
    tool = leadflow(
        "subscribe",
        "deal.closed",
        "--bootstrap",
        UNREACHABLE,
        "--connect-timeout",
        "2",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, errors = tool.communicate(timeout=60)
    assert tool.returncode == 1
    assert out == ""
    assert f"leadflow: cannot reach a Kafka broker at {UNREACHABLE}" in errors
    assert "Traceback" not in errors


def dead_lettered(topic: str) -> set[tuple[int, int]]:
    """Where the records of `topic` that a service refused came from."""
    return {
        (int(r.headers["dlq.origin.partition"]), int(r.headers["dlq.origin.offset"]))
        for r in read_topic(topics.dead_letter_topic(topic))
        if r.headers.get("dlq.origin.topic") == topic.encode()
    }


@pytest.mark.parametrize("topic", topics.EVENT_TOPICS)
def test_every_record_on_the_topic_validates_against_the_committed_json_schema(
    system: dict[str, Worker], topic: str
) -> None:
    # Runs after the test above, which put records on every topic through the system.
    records = eventually(lambda: read_topic(topic))
    validator = EventValidator()
    refused = dead_lettered(topic) if topic in generate.CONSUMED_BY else set()
    invalid: list[str] = []
    for record in records:
        raw = json.dumps(record.value).encode() if isinstance(record.value, dict) else record.value
        try:
            validator.validate(topic, record.key.encode() if record.key else None, raw)
        except Invalid as error:
            # A record a test wrote on purpose is fine if a consumer refused it.
            if (record.partition, record.offset) not in refused:
                invalid.append(f"partition {record.partition} offset {record.offset}: {error}")
        else:
            assert record.headers["content-type"] == b"application/cloudevents+json"
    assert invalid == []
