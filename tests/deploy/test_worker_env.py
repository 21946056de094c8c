"""The environment the chart gives a worker is the one the services read, and a
worker started with it shuts down cleanly on SIGTERM within the chart's grace period."""

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.marketing.settings import MarketingSettings
from services.orders.settings import OrdersSettings
from services.runtime.settings import ServiceSettings
from services.sales.settings import SalesSettings
from services.webhooks.settings import WebhooksSettings
from tests.deploy.chart import PRODUCTION_VALUES, render
from tests.system import BOOTSTRAP, PORT_BASE, Broker, Worker

SETTINGS: dict[str, type[ServiceSettings]] = {
    "marketing": MarketingSettings,
    "sales": SalesSettings,
    "orders": OrdersSettings,
    "webhooks": WebhooksSettings,
}


def settings_variables(settings: type[ServiceSettings]) -> set[str]:
    """The LEADFLOW_* variables a service reads (its settings' fields and aliases)."""
    return {(field.alias or f"LEADFLOW_{name}").upper() for name, field in settings.model_fields.items()}


def worker_containers(*values: Path) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) by service."""
    found = {}
    for obj in render(*values):
        if obj["kind"] in ("Deployment", "StatefulSet"):
            pod = obj["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            found[container["name"]] = (pod, container)
    return found


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_every_leadflow_variable_the_chart_sets_is_read_by_the_service(values: tuple[Path, ...]) -> None:
    for service, (_, container) in worker_containers(*values).items():
        names = {e["name"] for e in container["env"] if e["name"].startswith("LEADFLOW_")}
        unknown = names - settings_variables(SETTINGS[service])
        assert not unknown, f"{service} ignores {sorted(unknown)}"


def test_a_worker_with_the_charts_environment_leaves_cleanly_within_the_grace_period(
    broker: Broker, tmp_path: Path
) -> None:
    pod, container = worker_containers()["sales"]
    # The issuer's keys: this machine's stand-in issuer (tests.system's workers get
    # it), not the chart's JWKS URL, which only a cluster reaches.
    env = {
        e["name"]: e["value"]
        for e in container["env"]
        if "value" in e and not e["name"].startswith("LEADFLOW_AUTH_")
    }
    port = PORT_BASE + 10
    # What Kubernetes fills in, and what differs on this machine. Its own app id:
    # it must not join the session's sales workers.
    env |= {
        "POD_IP": "127.0.0.1",
        "LEADFLOW_WEB_HOST": "127.0.0.1",
        "LEADFLOW_WEB_PORT": str(port),
        "LEADFLOW_ADVERTISED_URL": f"http://127.0.0.1:{port}",
        "LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "LEADFLOW_APP_ID": "leadflow-sales-chart-env",
        "LEADFLOW_DATA_DIR": str(tmp_path),
    }
    worker = Worker("sales", port, env=env)
    # The log file is appended to across sessions: read only this run's part.
    start = worker.log_path.stat().st_size if worker.log_path.exists() else 0
    worker.start()
    assert worker.process is not None
    try:
        worker.wait_ready()
        worker.process.send_signal(signal.SIGTERM)
        try:
            code = worker.process.wait(pod["terminationGracePeriodSeconds"])
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after the grace period, it would be killed:\n{worker.tail()}")
    finally:
        worker.stop()
    assert code == 0, worker.tail()
    log = worker.log_path.read_bytes()[start:].decode(errors="replace")
    assert "Flush producer buffer" in log
    assert "Traceback" not in log
