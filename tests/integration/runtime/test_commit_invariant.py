"""No committed offset ever passes a record that was neither handled nor dead-lettered.

Two orders workers on a broker of this test's own read `deal.closed` while it is
written to, and are SIGKILLed or SIGTERMed and started again in a seeded loop,
as Kubernetes restarts pods. After every cycle the group's committed offsets are
read from the broker and, for every partition, every offset below them must have
its outcome on the broker: an order on `order.created` (won deals) or the record
in `deal.closed.dlq` (a tampered total). At the end everything is handled, and
no order was made twice.
"""

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from schemas.envelope import CONTENT_TYPE, once_id
from schemas.topics import dead_letter_topic
from services.orders.domain.orders import order_id_for
from tests.chaos.supervisor import RunBroker
from tests.integration.orders.test_one_order_per_won_deal import deal_closed
from tests.system import PORT_BASE, ROOT, TEST_KAFKA_PORT, Worker, eventually, raw_records

pytestmark = [pytest.mark.slow, pytest.mark.broker]

PORT = TEST_KAFKA_PORT + 300
BOOTSTRAP = f"127.0.0.1:{PORT}"
GROUP = "leadflow-orders"
CYCLES = 5
TAMPERED_EVERY = 9  # one deal in nine does not add up and is dead-lettered


@pytest.fixture(scope="module")
def broker() -> Iterator[RunBroker]:
    broker = RunBroker(PORT, ROOT / ".cache" / f"kafka-invariant-{PORT}")
    broker.fresh()
    yield broker
    broker.run("stop")


class Deals(threading.Thread):
    """Writes won deals to deal.closed at a steady pace until told to stop."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            lead_id = f"lead-{uuid.uuid4().hex[:12]}"
            tampered = self.sent % TAMPERED_EVERY == TAMPERED_EVERY - 1
            value = deal_closed(lead_id, amount="1.00" if tampered else None)
            self.producer.send(
                "deal.closed",
                key=lead_id.encode(),
                value=value,
                headers=[("content-type", CONTENT_TYPE.encode())],
            )
            self.sent += 1
            time.sleep(0.02)
        self.producer.flush()
        self.producer.close()


def committed_offsets() -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        found = admin.list_group_offsets({GROUP: None}).get(GROUP, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items() if tp.topic == "deal.closed"}


def read_all(topic: str) -> list[Any]:
    return raw_records(topic, bootstrap=BOOTSTRAP, timeout=60)


class Outcomes:
    """What the broker shows was done with each deal.closed record."""

    def __init__(self, namespace: UUID) -> None:
        self.namespace = namespace

    def unhandled_below(self, committed: dict[int, int]) -> list[tuple[int, int]]:
        # Read the outcomes after the offsets: anything committed had its outcome
        # flushed to the broker before the commit.
        deals = {(r.partition, r.offset): r.key.decode() for r in read_all("deal.closed")}
        orders = read_all("order.created")
        order_ids = {json.loads(r.value)["id"] for r in orders}
        dead = {
            (int(h["dlq.origin.partition"]), int(h["dlq.origin.offset"]))
            for h in (dict(r.headers) for r in read_all(dead_letter_topic("deal.closed")))
        }
        missing = []
        for (partition, offset), lead_id in deals.items():
            if offset >= committed.get(partition, 0):
                continue
            made = str(once_id(self.namespace, "order.created", order_id_for(lead_id))) in order_ids
            if not made and (partition, offset) not in dead:
                missing.append((partition, offset))
        return sorted(missing)

    def orders_made_twice(self) -> list[str]:
        ids_per_order: dict[str, set[str]] = {}
        for record in read_all("order.created"):
            event = json.loads(record.value)
            ids_per_order.setdefault(event["data"]["order_id"], set()).add(event["id"])
        return [order for order, ids in ids_per_order.items() if len(ids) > 1]


def test_no_offset_is_committed_past_an_unhandled_record(broker: RunBroker, tmp_path: Path) -> None:
    rng = random.Random(16)
    namespace = uuid.uuid4()
    env = {"LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP, "LEADFLOW_ID_NAMESPACE": str(namespace)}
    workers = [
        Worker("orders", PORT_BASE + 40 + i, env={**env, "LEADFLOW_DATA_DIR": str(tmp_path / str(i))})
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready()
    outcomes = Outcomes(namespace)
    deals = Deals()
    deals.start()
    try:
        for cycle in range(CYCLES):
            time.sleep(rng.uniform(0.5, 3.0))
            worker = rng.choice(workers)
            assert worker.process is not None
            if rng.random() < 0.7:
                worker.process.kill()
            else:
                worker.process.terminate()
            worker.process.wait(30)
            time.sleep(rng.uniform(1.0, 2.0))
            worker.start()
            worker.wait_ready()
            committed = committed_offsets()
            assert outcomes.unhandled_below(committed) == [], f"cycle {cycle}, committed {committed}"
    finally:
        deals.stopping.set()
        deals.join(30)
    try:

        def everything_committed() -> bool:
            consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
            try:
                partitions = [TopicPartition("deal.closed", p) for p in range(6)]
                ends = {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
            finally:
                consumer.close()
            committed = committed_offsets()
            assert all(committed.get(p, 0) >= end for p, end in ends.items()), (committed, ends)
            return True

        eventually(everything_committed, timeout=90, interval=1.0)
        assert outcomes.unhandled_below(committed_offsets()) == []
        assert outcomes.orders_made_twice() == []
        assert deals.sent > 100
    finally:
        for worker in workers:
            worker.stop()
