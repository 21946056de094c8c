"""After a stop that was not clean, a worker undoes the table writes in flight.

A table write reaches the local database before its changelog record leaves the
producer. Found by the chaos suite: an orders worker SIGKILLed in between kept
an order on its volume that the changelog never got; the redelivered deal found
it stored and wrote nothing, so no other worker ever served that order. Now a
write keeps the value it replaced until its changelog record is acknowledged.
Here a real orders worker is SIGKILLed, and its database is left as two writes
in flight leave it (a new order, and a change to a real one, neither on the
changelog): started again, it must serve what the changelog holds, and only
that. After a SIGTERM nothing is in flight and nothing is undone.
"""

import signal
import uuid
from pathlib import Path
from typing import cast

from rocksdict import Rdict

from services.runtime.rocksdb_store import BEFORE, NOTHING, SOMETHING
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
        served = api.get(f"{worker.url}/orders/order-{won}", timeout=10).json()

        # A clean stop: every write is on the changelog, nothing to undo.
        assert _stop(worker, signal.SIGTERM) == 0, worker.tail()
        size = _log_size(worker)
        worker.start().wait_ready(timeout=120)
        assert "undid" not in _logged_since(worker, size)
        assert _status(worker, won) == 200

        # A crash with two writes in flight: a new order, and a change to the real one.
        assert _stop(worker, signal.SIGKILL) == -signal.SIGKILL
        ghost = f"lead-ghost-{uuid.uuid4().hex[:10]}"
        stored = Rdict(str(_holding(tmp_path, won.encode())))
        try:
            real = cast(bytes, stored[won.encode()])
            changed = real.replace(b'"Acme"', b'"Changed GmbH"')
            assert changed != real
            stored[ghost.encode()] = real
            stored[BEFORE + ghost.encode()] = NOTHING
            stored[won.encode()] = changed
            stored[BEFORE + won.encode()] = SOMETHING + real
        finally:
            stored.close()

        size = _log_size(worker)
        worker.start().wait_ready(timeout=120)
        assert "undid 2 table writes" in _logged_since(worker, size), worker.tail()
        assert api.get(f"{worker.url}/orders/order-{won}", timeout=10).json() == served, worker.tail()
        assert _status(worker, ghost) == 404, worker.tail()
    finally:
        worker.stop()
