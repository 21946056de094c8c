"""One order per won deal, on the real broker: however often deal.closed is
delivered, after a crash, and after a replay of the topic from offset zero with a
restarted worker; a tampered total lands in the DLQ with its reason instead.

deal.closed records are produced directly, as sales would publish them."""

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import KafkaError, NoError

from schemas.envelope import CONTENT_TYPE, new_event
from schemas.events import Company, Contact, Customer, DealClosed, DealLine, LostReason, Outcome
from schemas.subscriber import EventValidator
from tests.conftest import SERVICE_PORTS
from tests.system import BOOTSTRAP, PORT_BASE, Record, Worker, api, eventually, list_all, produce, read_topic

SESSION_GROUP = "leadflow-orders"
# Extra workers' ports: inside this session's range, clear of the session's own.
PAIR_PORTS = (PORT_BASE + 10, PORT_BASE + 11)


def deal_closed(lead_id: str, *, outcome: Outcome = Outcome.WON, amount: str | None = None) -> bytes:
    won = outcome is Outcome.WON
    lines = [
        DealLine(sku="LF-CORE", name="Leadflow Core", quantity=1, unit_price=Decimal("12000.00")),
        DealLine(sku="LF-SEAT", name="Seat", quantity=5, unit_price=Decimal("480.00")),
    ]
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id=None,
        outcome=outcome,
        lost_reason=None if won else LostReason.COMPETITOR,
        owner="rep-it",
        customer=Customer(
            company=Company(name="Acme", country="DE"), contact=Contact(email="a@acme.io", name="A")
        ),
        lines=lines if won else [],
        amount=Decimal(amount or ("14400.00" if won else "0.00")),
        currency="EUR",
        opened_at=datetime.now(UTC) - timedelta(days=3),
        first_contact_at=datetime.now(UTC) - timedelta(days=2),
        closed_at=datetime.now(UTC),
    )
    return new_event(data, source="/leadflow/sales", subject=lead_id).to_json()


def publish(lead_id: str, value: bytes) -> None:
    produce("deal.closed", lead_id, value, headers=[("content-type", CONTENT_TYPE.encode())])


def new_lead() -> str:
    return f"lead-it-{uuid.uuid4().hex[:12]}"


def wait_caught_up(group: str, topic: str = "deal.closed", timeout: float = 90.0) -> None:
    """Until `group` has committed every record now on `topic`: all were processed."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        end = consumer.end_offsets(partitions)

        def caught_up() -> bool:
            committed = admin.list_group_offsets({group: partitions}).get(group, {})
            # No committed offset yet counts as 0: an empty partition is caught up.
            done = {tp: max(getattr(committed.get(tp), "offset", 0), 0) for tp in partitions}
            behind = {tp.partition: (done[tp], end[tp]) for tp in partitions if done[tp] < end[tp]}
            assert not behind, f"{group} behind on {topic} (partition: committed, end): {behind}"
            return True

        eventually(caught_up, timeout=timeout, interval=0.5)
    finally:
        consumer.close()
        admin.close()


def orders_of(worker: Worker, **filters: str) -> list[dict[str, Any]]:
    # Retried only for a 503, while partitions move between workers.
    listed: list[dict[str, Any]] = eventually(
        lambda: [list_all(f"{worker.url}/orders", filters)], timeout=30
    )[0]
    return listed


def order_created(lead_ids: set[str]) -> dict[str, list[Record]]:
    found: dict[str, list[Record]] = defaultdict(list)
    for record in read_topic("order.created"):
        if record.key in lead_ids:
            found[record.key].append(record)
    return found


# -- against the session's orders worker --------------------------------------


def test_a_won_deal_delivered_again_and_again_makes_one_order_and_one_event(
    system: dict[str, Worker],
) -> None:
    orders = system["orders"]
    won, lost = new_lead(), new_lead()
    record = deal_closed(won)
    for _ in range(3):
        publish(won, record)  # the same record delivered again (a producer retry, a replay)
    publish(won, deal_closed(won))  # and published again by sales: another event id
    publish(lost, deal_closed(lost, outcome=Outcome.LOST))
    wait_caught_up(SESSION_GROUP)

    [order] = orders_of(orders, deal_id=f"deal-{won}")
    assert order["order_id"] == f"order-{won}"
    assert order["lead_id"] == won
    assert order["total"] == "14400.00"
    assert order["currency"] == "EUR"
    assert [line["line_total"] for line in order["lines"]] == ["12000.00", "2400.00"]
    assert order["status"] == "created"
    assert api.get(f"{orders.url}/orders/order-{won}", timeout=10).json() == order
    assert orders_of(orders, deal_id=f"deal-{lost}") == []
    assert api.get(f"{orders.url}/orders/order-{lost}", timeout=10).status_code == 404

    events = order_created({won, lost})
    # Every delivery sends it again, the very same event: subscribers drop the copies by id.
    assert len(events[won]) == 4
    [event] = {json.dumps(copy.value): copy for copy in events[won]}.values()
    assert lost not in events
    assert event.headers["content-type"] == CONTENT_TYPE.encode()
    assert event.value["data"]["order_id"] == f"order-{won}"
    assert event.value["data"]["total"] == "14400.00"
    assert event.value["data"]["created_at"] == event.value["time"]
    valid = EventValidator().validate("order.created", won.encode(), json.dumps(event.value).encode())
    assert valid == event.value


def test_a_tampered_total_lands_in_the_dlq_with_its_reason_and_makes_no_order(
    system: dict[str, Worker],
) -> None:
    orders = system["orders"]
    lead_id = new_lead()
    tampered = deal_closed(lead_id, amount="1.00")
    publish(lead_id, tampered)
    [origin] = eventually(lambda: [r for r in read_topic("deal.closed") if r.key == lead_id])

    def dead_letter() -> Record | None:
        return next(
            (
                r
                for r in read_topic("deal.closed.dlq")
                if r.key == lead_id and r.headers.get("dlq.failed.by") == b"orders"
            ),
            None,
        )

    record = eventually(dead_letter, timeout=60)
    assert record.value == json.loads(tampered)  # the record itself, as it was
    assert record.headers["dlq.error.type"] == b"TotalMismatch"
    assert (
        record.headers["dlq.error"]
        == f"deal deal-{lead_id} says amount 1.00 EUR but its lines add up to 14400.00".encode()
    )
    assert record.headers["dlq.origin.topic"] == b"deal.closed"
    assert int(record.headers["dlq.origin.partition"]) == origin.partition
    assert int(record.headers["dlq.origin.offset"]) == origin.offset
    assert datetime.fromisoformat(record.headers["dlq.failed.at"].decode()).tzinfo is not None
    assert record.headers["content-type"] == CONTENT_TYPE.encode()  # the original's headers are kept

    wait_caught_up(SESSION_GROUP)
    assert orders_of(orders, deal_id=f"deal-{lead_id}") == []
    assert lead_id not in order_created({lead_id})
    # The worker goes on: the next good deal still makes its order.
    after = new_lead()
    publish(after, deal_closed(after))
    eventually(lambda: orders_of(orders, deal_id=f"deal-{after}"), timeout=60)


# -- a deployment of two workers of its own, crashed, restarted and replayed -----


@pytest.fixture
def pair(system: dict[str, Worker]) -> Iterator[tuple[Worker, Worker]]:
    """Two orders workers with an app id (consumer group, tables) of their own,
    started after records exist: they read deal.closed from the beginning."""
    app_id = f"leadflow-orders-it-{uuid.uuid4().hex[:8]}"
    env = {
        "LEADFLOW_APP_ID": app_id,
        # Another deployment: its event ids are its own.
        "LEADFLOW_ID_NAMESPACE": str(uuid.uuid4()),
        # Notice a killed worker in seconds, not a minute (Faust reads these).
        "BROKER_SESSION_TIMEOUT": "10",
        "BROKER_HEARTBEAT_INTERVAL": "1",
    }
    assert not set(PAIR_PORTS) & set(SERVICE_PORTS.values())
    workers = (Worker("orders", PAIR_PORTS[0], env=env), Worker("orders", PAIR_PORTS[1], env=env))
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def app_id_of(worker: Worker) -> str:
    return worker.env["LEADFLOW_APP_ID"]


def wait_ready(*workers: Worker) -> None:
    for worker in workers:
        worker.wait_ready(timeout=120)
    # Every worker ready at once: no rebalance left under way.
    eventually(
        lambda: all(api.get(f"{w.url}/readyz", timeout=5).status_code == 200 for w in workers), timeout=60
    )


def status(worker: Worker, lead_id: str, to: str) -> httpx.Response:
    return api.post(f"{worker.url}/orders/order-{lead_id}/status", json={"status": to}, timeout=30)


def in_status(worker: Worker) -> dict[str, float]:
    text = api.get(f"{worker.url}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("leadflow_orders_in_status{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels.split('"')[1]] = float(value)
    return counts


def test_one_order_per_won_deal_across_two_workers_a_crash_and_a_replay_from_offset_zero(
    system: dict[str, Worker], pair: tuple[Worker, Worker]
) -> None:
    first, second = pair
    group = app_id_of(first)
    won = [new_lead() for _ in range(3)]
    lost = new_lead()
    records = {lead_id: deal_closed(lead_id) for lead_id in won}
    for lead_id, record in records.items():
        publish(lead_id, record)
    publish(lost, deal_closed(lost, outcome=Outcome.LOST))

    # A new deployment reads deal.closed from the beginning, then scales to two workers.
    # One at a time: we saw a worker that joined while the other had processed but not
    # yet committed never consume those partitions (no committed offset, and aiokafka's
    # seek_to_committed skips offset 0/None after faust's table recovery).
    first.start()
    wait_ready(first)
    wait_caught_up(group)
    second.start()
    wait_ready(first, second)
    wait_caught_up(group)
    for lead_id in won:
        for worker in pair:
            [order] = orders_of(worker, deal_id=f"deal-{lead_id}")
            assert order["order_id"] == f"order-{lead_id}"
            got = api.get(f"{worker.url}/orders/order-{lead_id}", timeout=20)  # forwarded to the owner
            assert got.status_code == 200, got.text
            assert got.json() == order
    assert orders_of(first, deal_id=f"deal-{lost}") == []
    everything = orders_of(first)
    assert len({o["order_id"] for o in everything}) == len(everything)  # each worker answers for its own
    assert {f"order-{lead_id}" for lead_id in won} <= {o["order_id"] for o in everything}
    # Orders by status, summed over the workers, is every order exactly once.
    gauges = [in_status(worker) for worker in pair]
    assert sum(sum(g.values()) for g in gauges) == len(everything)

    # Lifecycle through either worker: the owner applies it, every move stamped.
    shipped, dropped = won[0], won[1]
    assert status(second, shipped, "confirmed").status_code == 200
    assert status(first, shipped, "fulfilled").status_code == 200
    refused = status(second, shipped, "cancelled")
    assert refused.status_code == 409, refused.text
    assert "cannot become cancelled" in refused.text
    assert status(first, dropped, "cancelled").status_code == 200
    assert status(second, dropped, "confirmed").status_code == 409
    assert status(first, dropped, "shipped").status_code == 422
    [fulfilled] = orders_of(second, deal_id=f"deal-{shipped}", status="fulfilled")
    moves = [(h["status"], datetime.fromisoformat(h["at"])) for h in fulfilled["history"]]
    assert [m[0] for m in moves] == ["created", "confirmed", "fulfilled"]
    # Who moved it: the subject of the caller's token, kept through the forwarding.
    assert [h["by"] for h in fulfilled["history"]] == [None, "tests", "tests"]
    assert [m[1] for m in moves] == sorted(m[1] for m in moves)

    # A redelivery, and a crash: new deals in a burst, then one worker killed outright,
    # most likely before it committed what it had just processed.
    publish(won[2], records[won[2]])
    burst = [new_lead() for _ in range(6)]
    for lead_id in burst:
        publish(lead_id, deal_closed(lead_id))
    eventually(lambda: any(orders_of(first, deal_id=f"deal-{lead_id}") for lead_id in burst), timeout=60)
    assert second.process is not None
    second.process.kill()
    second.process.wait()
    second.start()
    wait_ready(first, second)
    wait_caught_up(group)
    for lead_id in [*won, *burst]:
        assert len(orders_of(first, deal_id=f"deal-{lead_id}")) == 1, lead_id

    # Replay from offset zero: both stopped, the group's deal.closed offsets reset to
    # the start, one restarted: its table comes back from the changelog, so the whole
    # topic delivered again makes no order, and each order.created sent again is an
    # exact copy of the one out already (same id, same content).
    wait_caught_up(SESSION_GROUP)  # the session's worker has published its events too
    before = {o["order_id"]: o for o in orders_of(first)}
    events_before = order_created({*won, *burst})
    for worker in pair:
        worker.stop()
    reset_to_beginning(group)
    first.start()
    wait_ready(first)
    wait_caught_up(group)
    after = {o["order_id"]: o for o in orders_of(first)}
    assert after == before  # same orders, same statuses and timestamps: none made again
    assert after[f"order-{shipped}"]["status"] == "fulfilled"
    events_after = order_created({*won, *burst})
    for lead_id in [*won, *burst]:
        assert len(events_after[lead_id]) > len(events_before[lead_id]), lead_id

    # Each order has exactly one order.created per deployment (the session's and this
    # one's); every copy, from the crash or the replay, is the same event, byte for byte.
    for lead_id in [*won, *burst]:
        by_id: dict[str, list[Any]] = defaultdict(list)
        for event in events_after[lead_id]:
            by_id[event.value["id"]].append(event.value)
        assert len(by_id) == 2, (lead_id, list(by_id))
        for copies in by_id.values():
            assert all(copy == copies[0] for copy in copies)


def reset_to_beginning(group: str, topic: str = "deal.closed") -> None:
    """Set `group`'s committed offsets on `topic` back to the first record."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        specs = {TopicPartition(topic, p): OffsetSpec.EARLIEST for p in partitions}

        def reset() -> bool:
            # Refused while the stopped workers have not left the group yet.
            try:
                answers = admin.reset_group_offsets(group, specs)
            except KafkaError as refused:
                raise AssertionError(f"offsets of {group} not reset: {refused}") from refused
            failed = {tp.partition: a["error"] for tp, a in answers.items() if a["error"] is not NoError}
            assert not failed, failed
            return True

        eventually(reset, timeout=60, interval=1)
    finally:
        consumer.close()
        admin.close()
