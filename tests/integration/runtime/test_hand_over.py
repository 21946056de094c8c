"""A worker stopped cleanly (a rolling update, a scale-down) hands its partitions
to the workers that remain at once, instead of leaving them unserved until it
returns or its session runs out.

Two orders workers of a deployment of their own, static members with a session
of 60 s. One is SIGTERMed and not started again. Without the hand-over, the
group would keep it as a member, and its partitions unassigned, for the whole
60 s; with it, the other worker holds every partition and turns deals closed on
any of them into orders well inside that time.
"""

import signal
import uuid
from pathlib import Path

from kafka import KafkaAdminClient

from tests.integration.orders.test_one_order_per_won_deal import deal_closed, publish
from tests.system import BOOTSTRAP, PORT_BASE, Broker, Worker, api, eventually

SESSION_SECONDS = 60
# Well inside the session: a stop that did not hand over would still be waited out.
HANDED_OVER_WITHIN = SESSION_SECONDS / 2
# Serving the partitions taken over also means recovering their tables; on a
# loaded CI machine that alone has taken longer than the hand-over. Membership
# above is what proves the hand-over; this only has to show the orders are made.
ORDERS_MADE_WITHIN = 120
# Enough leads that every one of the 6 partitions gets some (a miss: 6 x (5/6)^60 = 1e-4).
LEADS = 60


def members(group: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        described = admin.describe_groups([group])[group]
        return sorted(m["group_instance_id"] for m in described["members"])
    finally:
        admin.close()


def test_a_stopped_worker_s_partitions_go_to_the_one_that_remains(broker: Broker, tmp_path: Path) -> None:
    app_id = f"leadflow-orders-handover-{uuid.uuid4().hex[:8]}"
    env = {
        "LEADFLOW_APP_ID": app_id,
        "LEADFLOW_SESSION_TIMEOUT_SECONDS": str(SESSION_SECONDS),
        "LEADFLOW_HEARTBEAT_INTERVAL_SECONDS": "3",
        "LEADFLOW_STANDBY_REPLICAS": "1",
    }
    stays, goes = (
        Worker("orders", PORT_BASE + port, env={**env, "LEADFLOW_DATA_DIR": str(tmp_path / str(port))})
        for port in (61, 62)
    )
    try:
        stays.start().wait_ready(timeout=120)
        goes.start().wait_ready(timeout=120)
        eventually(lambda: members(app_id) == sorted([f"orders-{stays.port}", f"orders-{goes.port}"]), 60)
        assert goes.process is not None
        goes.process.send_signal(signal.SIGTERM)
        assert goes.process.wait(60) == 0, goes.tail()
        assert "left the group" in goes.log_path.read_text(errors="replace"), goes.tail()

        eventually(lambda: members(app_id) == [f"orders-{stays.port}"], HANDED_OVER_WITHIN)
        leads = [f"lead-handover-{uuid.uuid4().hex[:10]}" for _ in range(LEADS)]
        for lead_id in leads:
            publish(lead_id, deal_closed(lead_id))

        def orders_missing() -> list[str]:
            return [
                lead_id
                for lead_id in leads
                if api.get(f"{stays.url}/orders/order-{lead_id}", timeout=5).status_code != 200
            ]

        try:
            eventually(lambda: not orders_missing(), ORDERS_MADE_WITHIN)
        except AssertionError as error:
            missing = len(orders_missing())
            raise AssertionError(f"{missing} of {LEADS} orders not made\n{stays.tail(80)}") from error
    finally:
        goes.stop()
        stays.stop()
