"""Webhooks on the real broker with real workers: a real HTTP receiver subscribed
to deal.closed and order.created gets every event of leads run through to orders,
signed and verified, also those sent while it was down; the delivery log says
what it received; a slow receiver does not hold up another subscription."""

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from standardwebhooks import Webhook, WebhookVerificationError

from schemas.envelope import new_event
from tests.integration.bad_input.journey import Urls, lead_to_order
from tests.integration.bad_input.journey import capture as capture_lead
from tests.integration.webhooks.receiver import Receiver
from tests.system import BOOTSTRAP, PORT_BASE, Worker, api, eventually, list_all, produce, read_topic
from tests.unit.runtime.test_publisher import created

WEBHOOKS_PORT = PORT_BASE + 4

# Short retries so a receiver that comes back gets its deliveries in seconds.
WEBHOOKS_ENV = {
    "LEADFLOW_ALLOW_PRIVATE_TARGETS": "true",
    "LEADFLOW_ALLOW_HTTP_TARGETS": "true",
    "LEADFLOW_ATTEMPT_TIMEOUT_SECONDS": "2",
    "LEADFLOW_RETRY_ATTEMPTS": "40",
    "LEADFLOW_RETRY_FIRST_DELAY_SECONDS": "0.5",
    "LEADFLOW_RETRY_FACTOR": "2",
    "LEADFLOW_RETRY_MAX_DELAY_SECONDS": "2",
    "LEADFLOW_DISPATCH_INTERVAL_SECONDS": "0.2",
}


@pytest.fixture(scope="module")
def webhooks(system: dict[str, Worker]) -> Iterator[Worker]:
    worker = Worker("webhooks", WEBHOOKS_PORT, env=WEBHOOKS_ENV).start()
    try:
        yield worker.wait_ready()
    finally:
        worker.stop()


@pytest.fixture
def urls(system: dict[str, Worker]) -> Urls:
    return Urls(system["marketing"].url, system["sales"].url, system["orders"].url)


def caught_up(*event_topics: str) -> bool:
    """Whether webhooks has committed every record already on `event_topics`: other
    modules' leads, whose events a subscription made now would otherwise get too."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        committed = admin.list_group_offsets(["leadflow-webhooks"]).get("leadflow-webhooks", {})
        partitions = [
            TopicPartition(t, p) for t in event_topics for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = consumer.end_offsets(partitions)
        # A partition it never committed on must be empty.
        return all((committed[tp].offset if tp in committed else 0) >= end for tp, end in ends.items())
    finally:
        consumer.close()
        admin.close()


def subscribe(webhooks: Worker, receiver: Receiver, event_types: list[str], **extra: Any) -> dict[str, Any]:
    # Tests count the deliveries their receiver gets: none of earlier tests' leads.
    eventually(lambda: caught_up(*event_types), timeout=90)
    answer = api.post(
        f"{webhooks.url}/subscriptions",
        json={"url": receiver.url, "event_types": event_types, **extra},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    subscription: dict[str, Any] = answer.json()
    receiver.secret = subscription["secret"]
    return subscription


def delivery_log(webhooks: Worker, subscription_id: str) -> dict[str, dict[str, Any]]:
    """Every delivery of the subscription's log, by event id."""
    leads = list_all(f"{webhooks.url}/subscriptions/{subscription_id}/deliveries")
    return {d["event_id"]: d for lead in leads for d in lead["deliveries"]}


def events_of(lead_ids: set[str], *topics: str) -> dict[str, dict[str, Any]]:
    return {
        record.value["id"]: record.value
        for topic in topics
        for record in read_topic(topic)
        if record.key in lead_ids
    }


def test_a_receiver_down_for_a_while_gets_every_event_signed_once_it_is_back(
    webhooks: Worker, urls: Urls
) -> None:
    receiver = Receiver(PORT_BASE + 100).start()
    subscription = subscribe(webhooks, receiver, ["deal.closed", "order.created"], description="billing")
    subscription_id = subscription["subscription_id"]
    assert subscription["status"] == "active"
    assert subscription["secret"].startswith("whsec_")
    # The verification delivery came first, signed with the secret the answer shows.
    [verification] = receiver.received
    assert json.loads(verification.body)["type"] == "leadflow.webhook.verification"
    Webhook(subscription["secret"]).verify(verification.body, verification.headers)
    # The secret is shown once, never again.
    shown = api.get(f"{webhooks.url}/subscriptions/{subscription_id}", timeout=10).json()
    assert "secret" not in shown
    assert "secrets" not in shown
    assert shown["event_types"] == ["deal.closed", "order.created"]

    leads = {lead_to_order(urls)}
    eventually(lambda: len(receiver.accepted_ids()) == 2, timeout=30)

    receiver.stop()
    leads |= {lead_to_order(urls) for _ in range(2)}

    # Tried and failed while it was down: the log says so, nothing was lost.
    def failing() -> bool:
        log = delivery_log(webhooks, subscription_id)
        return sum(1 for d in log.values() if d["status"] == "pending" and d["attempts"] >= 1) >= 1

    eventually(failing, timeout=30)
    receiver.start()

    expected = events_of(leads, "deal.closed", "order.created")
    assert len(expected) == 6
    eventually(lambda: receiver.accepted_ids() == set(expected), timeout=60)

    # Every delivery is the event as it is on the topic, its id the webhook-id, and
    # verified by the standardwebhooks library with the subscription's secret.
    for received in receiver.accepted():
        event = json.loads(received.body)
        assert event == expected[received.headers["webhook-id"]]
        assert received.headers["content-type"] == "application/cloudevents+json"
    assert all(r.verified is not False for r in receiver.received)

    # The delivery log matches what the receiver accepted.
    log = eventually(
        lambda: (
            (found := delivery_log(webhooks, subscription_id))
            and all(d["status"] == "delivered" for d in found.values())
            and found
        ),
        timeout=30,
    )
    assert set(log) == set(expected)
    for event_id, delivery in log.items():
        assert delivery["event_type"] == expected[event_id]["type"]
        assert delivery["last_status_code"] == 200
        answered = [r for r in receiver.received if r.headers.get("webhook-id") == event_id]
        assert answered[-1].answered == 200
    retried = [d for d in log.values() if d["attempts"] > 1]
    assert retried, "some deliveries were made while the receiver was down"
    # Nothing twice beyond a redelivery of the same webhook-id (an answer lost in flight).
    accepted = [r.headers["webhook-id"] for r in receiver.accepted()]
    assert len(accepted) - len(set(accepted)) <= 1

    # Per lead, the receiver got deal.closed before order.created.
    for lead_id in leads:
        kinds = [
            json.loads(r.body)["type"]
            for r in receiver.accepted()
            if json.loads(r.body)["subject"] == lead_id
        ]
        assert kinds.index("deal.closed") < kinds.index("order.created")

    # A tampered or replayed delivery does not verify.
    original = receiver.accepted()[0]
    verifier = Webhook(subscription["secret"])
    tampered = original.body.replace(b'"data":{', b'"data":{"extra":1,', 1)
    assert tampered != original.body
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, original.headers)
    stale = {**original.headers, "webhook-timestamp": str(int(time.time()) - 600)}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(original.body, stale)
    other_id = {**original.headers, "webhook-id": "another-id"}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(original.body, other_id)
    receiver.stop()


def test_a_slow_receiver_does_not_delay_another_subscription(webhooks: Worker, urls: Urls) -> None:
    slow = Receiver(PORT_BASE + 101).start()
    fast = Receiver(PORT_BASE + 102).start()
    slow_subscription = subscribe(webhooks, slow, ["lead.created", "lead.qualified"])
    subscribe(webhooks, fast, ["lead.created", "lead.qualified"])
    slow.delay = 5.0  # longer than an attempt may take (2 s): every attempt times out
    try:
        started = time.monotonic()
        lead_ids = {capture_lead(urls) for _ in range(5)}
        expected = events_of(lead_ids, "lead.created", "lead.qualified")
        assert len(expected) == 10
        eventually(lambda: fast.accepted_ids() >= set(expected), timeout=20)
        assert time.monotonic() - started < 15

        def timed_out() -> bool:
            log = delivery_log(webhooks, slow_subscription["subscription_id"]).values()
            return any(d["last_error"] and "no answer within 2s" in d["last_error"] for d in log)

        eventually(timed_out, timeout=20)
        slow.delay = 0
        eventually(lambda: slow.accepted_ids() >= set(expected), timeout=60)
    finally:
        slow.stop()
        fast.stop()
        for subscription in (slow_subscription,):
            api.delete(f"{webhooks.url}/subscriptions/{subscription['subscription_id']}", timeout=10)


def test_stage_moves_and_order_updates_are_delivered_in_the_order_they_happened(
    webhooks: Worker, urls: Urls
) -> None:
    receiver = Receiver(PORT_BASE + 107).start()
    subscription = subscribe(webhooks, receiver, ["deal.updated", "order.updated"])
    try:
        lead_id = lead_to_order(urls)
        order_id = f"order-{lead_id}"
        confirmed = api.post(
            f"{urls.orders}/orders/{order_id}/status", json={"status": "confirmed"}, timeout=20
        )
        assert confirmed.status_code == 200, confirmed.text
        expected = events_of({lead_id}, "deal.updated", "order.updated")
        # Opened, assigned, ... and the order confirmed.
        assert {e["type"] for e in expected.values()} == {"deal.updated", "order.updated"}
        eventually(lambda: receiver.accepted_ids() == set(expected), timeout=30)
        delivered = [json.loads(r.body) for r in receiver.accepted()]
        assert [e["id"] for e in delivered] == [
            e["id"]
            for e in sorted(expected.values(), key=lambda e: (e["time"], e["type"] == "order.updated"))
        ]
    finally:
        receiver.stop()
        api.delete(f"{webhooks.url}/subscriptions/{subscription['subscription_id']}", timeout=10)


def test_subscribing_refuses_a_url_that_does_not_accept_the_test_event(webhooks: Worker) -> None:
    refusing = Receiver(PORT_BASE + 103, answer=403).start()
    try:
        answer = api.post(
            f"{webhooks.url}/subscriptions",
            json={"url": refusing.url, "event_types": ["deal.closed"]},
            timeout=30,
        )
        assert answer.status_code == 422, answer.text
        assert "did not accept the signed test event: answered 403" in answer.text
        assert len(refusing.received) == 1
        nobody = api.post(
            f"{webhooks.url}/subscriptions",
            json={"url": f"http://127.0.0.1:{PORT_BASE + 109}/", "event_types": ["deal.closed"]},
            timeout=30,
        )
        assert nobody.status_code == 422, nobody.text
        bad_filter = api.post(
            f"{webhooks.url}/subscriptions",
            json={"url": refusing.url, "event_types": ["order.created"], "filter": {"outcome": "won"}},
            timeout=30,
        )
        assert bad_filter.status_code == 422
        assert "order.created" in bad_filter.text
    finally:
        refusing.stop()


def test_pause_rotate_replay_and_410(webhooks: Worker, urls: Urls) -> None:
    receiver = Receiver(PORT_BASE + 104).start()
    # A secret of the subscriber's choosing: the test event verifies too.
    receiver.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    subscription = subscribe(webhooks, receiver, ["lead.created"], filter={}, secret=receiver.secret)
    assert subscription["secret"] == receiver.secret
    [verification] = receiver.received
    assert verification.verified is True
    subscription_id = subscription["subscription_id"]
    base = f"{webhooks.url}/subscriptions/{subscription_id}"

    paused = api.patch(base, json={"paused": True}, timeout=30)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    lead_id = capture_lead(urls)
    [event] = events_of({lead_id}, "lead.created").values()
    eventually(lambda: event["id"] in delivery_log(webhooks, subscription_id), timeout=20)
    time.sleep(1)
    assert event["id"] not in receiver.accepted_ids()  # held while paused

    # Rotation: during the overlap every delivery carries a signature by each secret.
    old_secret = receiver.secret
    rotated = api.post(f"{base}/rotate-secret", json={"overlap_seconds": 3600}, timeout=30)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != old_secret
    assert rotated.json()["secret_overlap_until"] is not None
    receiver.secret = new_secret
    assert api.patch(base, json={"paused": False}, timeout=30).json()["status"] == "active"
    eventually(lambda: event["id"] in receiver.accepted_ids(), timeout=20)
    [delivered] = [r for r in receiver.accepted() if r.headers["webhook-id"] == event["id"]]
    assert len(delivered.headers["webhook-signature"].split(" ")) == 2
    assert old_secret is not None
    Webhook(old_secret).verify(delivered.body, delivered.headers)

    # Replay by event id: sent again with the same webhook-id.
    replayed = api.post(f"{base}/replay", json={"event_id": event["id"]}, timeout=60)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["queued"] == 1
    eventually(
        lambda: [r.headers["webhook-id"] for r in receiver.accepted()].count(event["id"]) == 2, timeout=20
    )
    # Replay from a time: the events of the subscribed type recorded since then.
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    from_time = api.post(f"{base}/replay", json={"since": since}, timeout=60)
    assert from_time.status_code == 202
    assert event["id"] in from_time.json()["event_ids"]
    assert api.post(f"{base}/replay", json={}, timeout=30).status_code == 422

    # 410 Gone: the subscription is disabled and gets nothing more.
    receiver.answer = 410
    capture_lead(urls)
    eventually(lambda: api.get(base, timeout=10).json()["status"] == "disabled", timeout=30)
    assert api.patch(base, json={"paused": False}, timeout=30).status_code == 409
    assert api.delete(base, timeout=30).status_code == 204
    assert api.get(base, timeout=10).status_code == 404
    receiver.stop()


def test_an_event_too_large_to_queue_is_dead_lettered_and_replay_says_so(webhooks: Worker) -> None:
    # Valid (fields the schema does not know are kept), but a delivery holds the
    # event's body and the deliveries table refuses a value over Kafka's limit.
    receiver = Receiver(PORT_BASE + 108).start()
    subscription = subscribe(webhooks, receiver, ["lead.created"], filter={})
    base = f"{webhooks.url}/subscriptions/{subscription['subscription_id']}"
    lead_id = f"lead-large-{uuid.uuid4()}"
    event = json.loads(new_event(created(lead_id), source="/leadflow/test", subject=lead_id).to_json())
    event["padding"] = "x" * 920_000
    produce("lead.created", lead_id, json.dumps(event).encode())

    def dead_letter() -> Any:
        return next((r for r in read_topic("lead.created.dlq") if r.key == lead_id), None)

    letter = eventually(dead_letter, timeout=30)
    assert letter.headers["dlq.failed.by"] == b"webhooks"
    assert b"at most 900,000" in letter.headers["dlq.error"]

    # Asked for by id: refused with the reason, not a 202 for a delivery that never comes.
    by_id = api.post(f"{base}/replay", json={"event_id": event["id"]}, timeout=60)
    assert by_id.status_code == 422, by_id.text
    assert "too large" in by_id.text
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    from_time = api.post(f"{base}/replay", json={"since": since}, timeout=60)
    assert from_time.status_code == 202, from_time.text
    assert event["id"] in from_time.json()["too_large"]
    assert event["id"] not in from_time.json()["event_ids"]
    time.sleep(1)
    assert event["id"] not in receiver.accepted_ids()
    assert api.delete(base, timeout=30).status_code == 204
    receiver.stop()


def test_routes_need_webhook_scopes(webhooks: Worker) -> None:
    from tests.system import ISSUER

    reader = ISSUER.token(scopes=["webhooks:read"])
    headers = {"Authorization": f"Bearer {reader}"}
    import httpx

    assert httpx.get(f"{webhooks.url}/subscriptions", headers=headers, timeout=10).status_code == 200
    refused = httpx.post(
        f"{webhooks.url}/subscriptions",
        headers=headers,
        json={"url": "http://127.0.0.1:1/", "event_types": ["deal.closed"]},
        timeout=10,
    )
    assert refused.status_code == 403
    assert httpx.get(f"{webhooks.url}/subscriptions", timeout=10).status_code == 401


def test_a_worker_killed_mid_delivery_loses_nothing(webhooks: Worker, urls: Urls) -> None:
    receiver = Receiver(PORT_BASE + 105).start()
    subscription = subscribe(webhooks, receiver, ["lead.created", "lead.qualified"])
    receiver.delay = 1.5  # each request is still open when the worker dies
    try:
        lead_ids = {capture_lead(urls) for _ in range(3)}
        expected = events_of(lead_ids, "lead.created", "lead.qualified")
        assert len(expected) == 6
        eventually(lambda: len(receiver.received) >= 2, timeout=20)
        assert webhooks.process is not None
        webhooks.process.kill()  # SIGKILL: no goodbye, nothing flushed on the way out
        webhooks.process.wait()
        receiver.delay = 0
        webhooks.start().wait_ready()
        eventually(lambda: receiver.accepted_ids() >= set(expected), timeout=60)
        log = eventually(
            lambda: (
                (found := delivery_log(webhooks, subscription["subscription_id"]))
                and all(d["status"] == "delivered" for d in found.values())
                and found
            ),
            timeout=30,
        )
        assert set(log) == set(expected)
    finally:
        receiver.stop()
        api.delete(f"{webhooks.url}/subscriptions/{subscription['subscription_id']}", timeout=10)
