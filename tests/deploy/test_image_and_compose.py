"""The image definition, the compose file and the dashboard file, checked for their
structure (tests/container builds the images and runs them)."""

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.marketing.settings import MarketingSettings
from services.orders.settings import OrdersSettings
from services.runtime.settings import ServiceSettings
from services.sales.settings import SalesSettings
from services.webhooks.settings import WebhooksSettings
from tests.deploy.chart import ROOT, SERVICES

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "leadflow.json"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "marketing": MarketingSettings,
    "sales": SalesSettings,
    "orders": OrdersSettings,
    "webhooks": WebhooksSettings,
}
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|cmake|apt-get install|apk add|pip install|uv )")


def default_port(service: str) -> int:
    port = SETTINGS[service].model_fields["web_port"].default
    assert isinstance(port, int)
    return port


def stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions (continuation lines joined), by stage name."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            name = line.split(" AS ")[-1].strip() if " AS " in line else f"stage{len(found)}"
            current = found.setdefault(name, [])
        current.append(line)
    return found


def instruction(stage: list[str], keyword: str) -> list[str]:
    return [line.removeprefix(keyword).strip() for line in stage if line.startswith(keyword + " ")]


def test_image_builds_in_two_stages_on_slim_python_from_the_lock_file() -> None:
    found = stages()
    assert list(found) == ["builder", "runtime", "orders", "sales", "marketing", "webhooks"]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base.group(1))
    assert instruction(found["builder"], "FROM") == ["${PYTHON_IMAGE} AS builder"]
    assert instruction(found["runtime"], "FROM") == ["${PYTHON_IMAGE} AS runtime"]
    builder = " ".join(found["builder"])
    assert "COPY pyproject.toml uv.lock" in builder
    assert "uv sync --frozen --no-dev" in builder
    assert "--no-editable" in builder


def test_final_image_has_no_build_tools_and_runs_unprivileged() -> None:
    runtime = stages()["runtime"]
    for line in runtime:
        assert not BUILD_TOOLS.search(line), line
    assert "COPY --from=builder /opt/leadflow /opt/leadflow" in runtime
    (user,) = instruction(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert int(uid) >= 10000
    assert int(gid) >= 10000
    # The chart's runAsUser/fsGroup, and the data folder it owns.
    assert "runAsUser: 10001" in (ROOT / "deploy" / "helm" / "leadflow" / "values.yaml").read_text()
    assert any(f"install -d -o {uid} -g {gid}" in line and "/var/lib/leadflow" in line for line in runtime)
    env = " ".join(instruction(runtime, "ENV"))
    assert "LEADFLOW_WEB_HOST=0.0.0.0" in env
    assert "LEADFLOW_DATA_DIR=/var/lib/leadflow" in env
    assert instruction(runtime, "VOLUME") == ['["/var/lib/leadflow", "/tmp"]']


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_own_target_and_entrypoint(service: str) -> None:
    stage = stages()[service]
    assert instruction(stage, "FROM") == [f"runtime AS {service}"]
    assert [json.loads(e) for e in instruction(stage, "ENTRYPOINT")] == [
        ["python", "-m", f"services.{service}"]
    ]
    assert [json.loads(c) for c in instruction(stage, "CMD")] == [["worker"]]
    assert instruction(stage, "EXPOSE") == [str(default_port(service))]
    assert (ROOT / "services" / service / "__main__.py").exists()


def test_build_context_holds_only_what_the_image_needs() -> None:
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:1] == ["*"]
    allowed = {line.removeprefix("!").rstrip("/") for line in ignore if line.startswith("!")}
    copied = {
        part
        for line in stages()["builder"]
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
    }
    assert copied <= allowed


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_runs_a_kraft_broker_that_creates_no_topic_by_itself() -> None:
    kafka = compose()["services"]["kafka"]
    pinned = re.search(r"<kafka.version>(.+)</kafka.version>", (ROOT / "deploy/local/pom.xml").read_text())
    assert pinned is not None
    assert kafka["image"] == f"apache/kafka:{pinned.group(1)}"  # the local broker's version
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(env).upper()
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["healthcheck"]["test"][0] == "CMD"


def test_compose_creates_every_services_topics_before_the_services_start() -> None:
    services = compose()["services"]
    topics = services["topics"]
    script = " ".join(topics["command"])
    for service in SERVICES:
        assert f"python -m services.{service} topics" in script
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["environment"]["LEADFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert shlex.split(script)  # a well-formed shell command


@pytest.mark.parametrize("service", SERVICES)
def test_compose_builds_and_runs_each_service_locked_down(service: str) -> None:
    spec = compose()["services"][service]
    build = spec["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert build["target"] == service
    port = default_port(service)
    env = spec["environment"]
    assert env["LEADFLOW_WEB_PORT"] == str(port)
    assert env["LEADFLOW_ADVERTISED_URL"] == f"http://{service}:{port}"
    assert env["LEADFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["LEADFLOW_CREATE_TOPICS"] == "false"
    assert spec["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert spec["read_only"] is True
    assert spec["user"] == "10001:10001"
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]
    assert {mount.split(":")[0] for mount in spec["tmpfs"]} == {"/tmp", "/var/lib/leadflow"}
    assert f"{port}:{port}" in spec["ports"]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(spec["healthcheck"]["test"])


def test_compose_monitoring_uses_the_projects_prometheus_and_grafana_files() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            assert (COMPOSE.parent / volume.split(":")[0]).exists(), volume
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {f"leadflow-{s}": [f"{s}:{default_port(s)}"] for s in SERVICES}


def test_dashboard_is_a_well_formed_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "namespace" in variables
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() and t["refId"] for t in panel["targets"]), panel["title"]
            assert panel["description"], panel["title"]


def test_provisioning_points_grafana_at_the_dashboard() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "leadflow.yaml").read_text())["providers"]
    grafana = compose()["services"]["grafana"]
    mounted = {Path(v.split(":")[1]).parent for v in grafana["volumes"] if v.endswith(".json:ro")}
    assert mounted == {Path(provider["options"]["path"])}
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
