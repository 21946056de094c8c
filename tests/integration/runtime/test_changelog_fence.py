"""A worker's tables, rebuilt from their changelogs, skip a past owner's late write.

Found by the chaos suite (seed 914): a worker frozen past its session woke and
its producer sent a table write buffered before it froze, after the new owner's
writes for the same lead; replayed, the stale value won. Here a real orders
worker makes an order, is SIGKILLed, and a late write of that order by an older
generation (created earlier) is put on its changelog, with a write of another
order by a newer generation beside it. Started again, the worker rebuilds its
tables from the changelog (memory, or RocksDB after an unclean stop): it must
serve the order as its owner wrote it, and the newer write too.
"""

import json
import signal
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from services.runtime.changelog_fence import GENERATION_HEADER
from tests.integration.orders.test_one_order_per_won_deal import deal_closed, publish
from tests.system import BOOTSTRAP, PORT_BASE, Broker, Worker, api, eventually, raw_records

PORT = PORT_BASE + 55


def _order(worker: Worker, lead_id: str) -> dict[str, object] | None:
    response = api.get(f"{worker.url}/orders/order-{lead_id}", timeout=10)
    return response.json() if response.status_code == 200 else None


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_late_write_of_a_past_owner_is_skipped_on_replay(
    broker: Broker, tmp_path: Path, store: str
) -> None:
    app_id = f"leadflow-orders-fence-{uuid.uuid4().hex[:8]}"
    env = {"LEADFLOW_APP_ID": app_id, "LEADFLOW_DATA_DIR": str(tmp_path), "LEADFLOW_STORE": store}
    worker = Worker("orders", PORT, env=env)
    worker.start().wait_ready(timeout=120)
    try:
        won = f"lead-fence-{uuid.uuid4().hex[:10]}"
        publish(won, deal_closed(won))
        eventually(lambda: _order(worker, won) is not None, timeout=30)
        served = _order(worker, won)

        changelog = f"{app_id}-orders-changelog"
        [written] = [r for r in raw_records(changelog) if r.key == won.encode()]
        generation = int(dict(written.headers)[GENERATION_HEADER])

        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(30)

        stale = json.loads(written.value)
        stale["customer"]["company"]["name"] = "Stale GmbH"
        later = f"lead-fence-later-{uuid.uuid4().hex[:10]}"
        newer = {**json.loads(written.value), "lead_id": later, "order_id": f"order-{later}"}
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
        try:
            late = [(GENERATION_HEADER, str(generation - 1).encode())]
            producer.send(
                changelog,
                key=won.encode(),
                value=json.dumps(stale).encode(),
                partition=written.partition,
                timestamp_ms=written.timestamp - 20_000,
                headers=late,
            ).get(timeout=10)
            producer.send(
                changelog,
                key=later.encode(),
                value=json.dumps(newer).encode(),
                partition=written.partition,
                timestamp_ms=written.timestamp + 20_000,
                headers=[(GENERATION_HEADER, str(generation + 1).encode())],
            ).get(timeout=10)
        finally:
            producer.close()

        worker.start().wait_ready(timeout=120)
        assert _order(worker, won) == served, worker.tail()
        replayed = _order(worker, later)
        assert replayed is not None, worker.tail()
        assert replayed["order_id"] == f"order-{later}"
    finally:
        worker.stop()
