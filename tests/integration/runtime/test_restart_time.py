"""Back in seconds: a worker killed or stopped and started again serves its
partitions within seconds, not after the group's session timeout.

Each service runs one worker of a deployment of its own (own app id, so its own
consumer group) on the session's broker, with its tables in RocksDB on a kept data
dir, as the chart deploys it. It is SIGKILLed and started again after
1 s, then SIGTERMed (a rolling update) and started again after 1 s. The targets
are 10 s from the restart to serving (SIGKILL) and 5 s unserved in all (SIGTERM);
this shared machine gets three times that, so a return to the 60 s stall of a
dead member's session fails while noise does not. The figures are printed.
"""

import signal
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.orders.test_one_order_per_won_deal import deal_closed, publish
from tests.system import PORT_BASE, Broker, Worker, api, eventually

KILLED_TO_SERVING = 10.0
STOPPED_UNSERVED = 5.0
MARGIN = 3.0
PORTS = {"marketing": PORT_BASE + 51, "sales": PORT_BASE + 52, "orders": PORT_BASE + 53}


def ready_after(worker: Worker, since: float) -> float:
    worker.wait_ready(timeout=120)
    return time.monotonic() - since


def store_memory(worker: Worker) -> dict[tuple[str, str], float]:
    metrics = api.get(f"{worker.url}/metrics", timeout=10).text
    return {
        (sample.labels["table"], sample.labels["kind"]): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "leadflow_table_store_memory_bytes"
    }


def restart(worker: Worker, sig: signal.Signals) -> tuple[float, int]:
    """Signal the worker, wait for it to exit, start it 1 s later: (time to exit, exit code)."""
    assert worker.process is not None
    signalled = time.monotonic()
    worker.process.send_signal(sig)
    code = worker.process.wait(60)
    stopped = time.monotonic() - signalled
    time.sleep(1.0)
    worker.start()
    return stopped, code


@pytest.mark.parametrize("service", list(PORTS))
def test_a_restarted_worker_serves_again_within_seconds(broker: Broker, service: str, tmp_path: Path) -> None:
    app_id = f"leadflow-{service}-restart-{uuid.uuid4().hex[:8]}"
    env = {"LEADFLOW_APP_ID": app_id, "LEADFLOW_DATA_DIR": str(tmp_path), "LEADFLOW_STORE": "rocksdb://"}
    worker = Worker(service, PORTS[service], env=env)
    worker.start().wait_ready(timeout=120)
    # Every worker runs on uvloop unless told otherwise (LEADFLOW_EVENT_LOOP).
    assert "worker starting on uvloop" in worker.log_path.read_text(), worker.tail()
    try:
        # SIGKILL: a crash. Static membership hands the partitions straight back.
        _, code = restart(worker, signal.SIGKILL)
        assert code == -signal.SIGKILL
        restarted_at = time.monotonic()
        if service == "orders":
            # A deal closed while the worker was down becomes an order once it serves.
            lead_id = f"lead-restart-{uuid.uuid4().hex[:10]}"
            publish(lead_id, deal_closed(lead_id))
        killed_to_serving = ready_after(worker, restarted_at)
        if service == "orders":
            order = f"{worker.url}/orders/order-{lead_id}"
            eventually(lambda: api.get(order, timeout=5).status_code == 200, timeout=30)
            killed_to_serving = time.monotonic() - restarted_at

        # SIGTERM: a rolling update. The worker finishes, commits and exits 0 quickly.
        terminated_at = time.monotonic()
        stopped, code = restart(worker, signal.SIGTERM)
        assert code == 0, worker.tail()
        unserved = ready_after(worker, terminated_at)
        print(
            f"\n{service}: SIGKILL: serving {killed_to_serving:.1f}s after the restart; "
            f"SIGTERM: exited in {stopped:.1f}s, unserved {unserved:.1f}s (restart after 1 s)"
        )
        assert killed_to_serving <= KILLED_TO_SERVING * MARGIN, worker.tail()
        assert unserved <= STOPPED_UNSERVED * MARGIN, worker.tail()

        # What its RocksDB tables hold in memory, as RocksDB counts it, for operators.
        stores = store_memory(worker)
        assert {kind for _, kind in stores} == {"memtables", "block_cache", "table_readers"}, stores
        if service == "orders":  # the order above is in its table's write buffers
            assert any(amount > 0 for (table, kind), amount in stores.items() if kind == "memtables"), stores
    finally:
        worker.stop()
