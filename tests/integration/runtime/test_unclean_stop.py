"""A worker trusts its RocksDB tables only after a clean stop.

A table write reaches the local database before its changelog record leaves the
producer. Found by the chaos suite: an orders worker SIGKILLed in between kept
an order on its volume that the changelog never got; the redelivered deal found
it stored and wrote nothing, so no other worker ever served that order. Here a
real orders worker is SIGKILLed and an order its changelog never got is put in
its database meanwhile: started again, it must serve what the changelog holds,
and only that. After a SIGTERM it keeps its databases and starts at once.
"""

import signal
import uuid
from pathlib import Path

from rocksdict import Rdict

from tests.integration.orders.test_one_order_per_won_deal import deal_closed, publish
from tests.system import PORT_BASE, Broker, Worker, api, eventually

PORT = PORT_BASE + 54


def _status(worker: Worker, lead_id: str) -> int:
    return api.get(f"{worker.url}/orders/order-{lead_id}", timeout=10).status_code


def _log_size(worker: Worker) -> int:
    return worker.log_path.stat().st_size if worker.log_path.exists() else 0


def _logged_since(worker: Worker, size: int) -> str:
    with worker.log_path.open("rb") as log:
        log.seek(size)
        return log.read().decode(errors="replace")


def _holding(tmp_path: Path, key: bytes) -> Path:
    """The partition database that holds `key`."""
    for path in sorted(tmp_path.rglob("orders-*.db")):
        database = Rdict(str(path))
        try:
            if key in database:
                return path
        finally:
            database.close()
    raise AssertionError(f"no database holds {key!r}")


def _stop(worker: Worker, sig: signal.Signals) -> int:
    assert worker.process is not None
    worker.process.send_signal(sig)
    return worker.process.wait(60)


def test_after_a_sigkill_the_tables_hold_what_their_changelog_holds(broker: Broker, tmp_path: Path) -> None:
    app_id = f"leadflow-orders-unclean-{uuid.uuid4().hex[:8]}"
    env = {"LEADFLOW_APP_ID": app_id, "LEADFLOW_DATA_DIR": str(tmp_path), "LEADFLOW_STORE": "rocksdb://"}
    worker = Worker("orders", PORT, env=env)
    worker.start().wait_ready(timeout=120)
    try:
        won = f"lead-unclean-{uuid.uuid4().hex[:10]}"
        publish(won, deal_closed(won))
        eventually(lambda: _status(worker, won) == 200, timeout=30)

        # A clean stop leaves its mark, and the databases are used as they are.
        assert _stop(worker, signal.SIGTERM) == 0, worker.tail()
        assert list(tmp_path.rglob("stopped-cleanly")), worker.tail()
        size = _log_size(worker)
        worker.start().wait_ready(timeout=120)
        assert "rebuilding" not in _logged_since(worker, size)
        assert _status(worker, won) == 200

        # A crash, and meanwhile a write its changelog never got.
        assert _stop(worker, signal.SIGKILL) == -signal.SIGKILL
        ghost = f"lead-ghost-{uuid.uuid4().hex[:10]}"
        stored = Rdict(str(_holding(tmp_path, won.encode())))
        try:
            stored[ghost.encode()] = stored[won.encode()]
        finally:
            stored.close()

        size = _log_size(worker)
        worker.start().wait_ready(timeout=120)
        assert "rebuilding" in _logged_since(worker, size), worker.tail()
        assert _status(worker, won) == 200, worker.tail()
        assert _status(worker, ghost) == 404, worker.tail()
    finally:
        worker.stop()
