"""Monitoring against the running system: a real Prometheus, started from the
project's prometheus.yml and alert rules, scrapes the three services; their live
/metrics follow Prometheus' naming rules; the Grafana dashboard and the alerts
only use metric names the services really expose."""

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SERVICE_PORTS
from tests.deploy.chart import ROOT, RULES_FILE, prometheus_bin
from tests.system import PORT_BASE, Worker, api, eventually, produce, unique_email

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "leadflow.json"
# Inside this session's port range (the workers use PORT_BASE+1..4).
PROMETHEUS_PORT = PORT_BASE + 90
# The session's three workers, and a webhooks worker of this module's own.
PORTS = {**SERVICE_PORTS, "webhooks": PORT_BASE + 4}
JOBS = {f"leadflow-{service}": service for service in PORTS}
# Series the alerts read from elsewhere: Prometheus itself, every client library's
# process collector, and kube-state-metrics (installed with the Prometheus Operator).
EXTERNAL_SERIES = {"up", "process_start_time_seconds", "kube_pod_status_ready"}
# Label names that would make one series per lead, deal, order or person.
UNBOUNDED_LABELS = {
    "lead_id", "deal_id", "order_id", "email", "contact", "name", "phone", "subject",
    "id", "event_id", "command_id", "company", "customer",
}  # fmt: skip
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# Units a Leadflow histogram may be in (Prometheus base units, or a count of a thing).
HISTOGRAM_UNITS = ("_seconds", "_bytes", "_ratio", "_score", "_units")
NON_BASE_UNITS = re.compile(
    r"_(ms|milliseconds|microseconds|minutes|hours|days|percent|kb|mb|kilobytes|megabytes)(_|$)"
)


def capture(marketing: Worker) -> str:
    body = {
        "channel": "web",
        "campaign_id": None,
        "contact": {"email": unique_email("ops"), "name": "Ops Check", "title": "CTO", "phone": "+49 30 1"},
        "company": {"name": "Acme", "industry": "software", "size": 120, "country": "DE"},
        "consent": True,
        "intent": "demo_request",
    }
    response = api.post(f"{marketing.url}/leads", json=body, timeout=20)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "qualified"
    return str(response.json()["lead_id"])


def win(sales: Worker, lead_id: str) -> str:
    def deal() -> dict[str, Any] | None:
        items = api.get(f"{sales.url}/deals", params={"lead_id": lead_id}, timeout=10).json()["items"]
        return items[0] if items else None

    deal_id = str(eventually(deal)["deal_id"])
    catalog = api.get(f"{sales.url}/catalog", timeout=10).json()["items"]
    sku = next(p["sku"] for p in catalog if p.get("active", True))
    closed = api.post(
        f"{sales.url}/deals/{deal_id}/close",
        json={"outcome": "won", "lines": [{"sku": sku, "quantity": 1}]},
        timeout=20,
    )
    assert closed.status_code == 200, closed.text
    return deal_id


@pytest.fixture(scope="module")
def expositions(system: dict[str, Worker], webhooks: Worker, scenario: None) -> dict[str, str]:
    """Each service's /metrics after the scenario, by service."""
    workers = {**system, "webhooks": webhooks}
    return {name: api.get(f"{w.url}/metrics", timeout=10).text for name, w in workers.items()}


def prometheus_config(rules_dir: Path) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, pointed at this session's workers and rules."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] |= {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules_dir / Path(pattern).name) for pattern in config["rule_files"]]
    assert {job["job_name"] for job in config["scrape_configs"]} == JOBS.keys()
    for job in config["scrape_configs"]:
        (targets,) = job["static_configs"]
        targets["targets"] = [f"127.0.0.1:{PORTS[JOBS[job['job_name']]]}"]
    return config


@pytest.fixture(scope="module")
def webhooks(system: dict[str, Worker]) -> Iterator[Worker]:
    """The fourth service, which the session's system does not run."""
    worker = Worker("webhooks", PORTS["webhooks"]).start()
    try:
        yield worker.wait_ready()
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def prometheus(
    system: dict[str, Worker], webhooks: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Prometheus server scraping the session's three workers and the webhooks worker."""
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(RULES_FILE.parent)))
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    log = (home / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(prometheus_bin() / "prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready() -> bool:
            assert process.poll() is None, (home / "prometheus.log").read_text()[-3000:]
            return api.get(f"{url}/-/ready", timeout=2).status_code == 200

        eventually(ready, timeout=30)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    answer = api.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", (promql, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


# The series behind the dashboard's funnel.
FUNNEL_SERIES = (
    "leadflow_marketing_leads_captured_total",
    "leadflow_marketing_leads_qualified_total",
    "leadflow_sales_deals_opened_total",
    'leadflow_sales_deals_closed_total{outcome="won"}',
    "leadflow_orders_created_total",
)


def lead_to_order(system: dict[str, Worker]) -> None:
    lead_id = capture(system["marketing"])
    deal_id = win(system["sales"], lead_id)
    orders = system["orders"]
    eventually(
        lambda: api.get(f"{orders.url}/orders", params={"deal_id": deal_id}, timeout=10).json()["items"]
    )


@pytest.fixture(scope="module")
def scenario(system: dict[str, Worker], prometheus: str) -> None:
    """Leads all the way to orders while Prometheus watches, and one command that
    cannot be read (dead-lettered by orders): every service has figures to show."""
    eventually(lambda: len(query(prometheus, 'up{namespace="leadflow"} == 1')) == len(JOBS), timeout=60)
    # A counter's first sample is not an increase to Prometheus: the first run
    # creates the series, the second one counts.
    lead_to_order(system)
    for funnel_series in FUNNEL_SERIES:
        eventually(partial(query, prometheus, funnel_series), timeout=30)
    lead_to_order(system)
    produce("leadflow-orders-commands", f"not-a-lead-{uuid.uuid4()}", b"this is not a command")
    orders = system["orders"]
    eventually(lambda: "leadflow_dead_letters_total{" in api.get(f"{orders.url}/metrics", timeout=10).text)


def test_prometheus_scrapes_business_and_faust_metrics_of_every_service(
    prometheus: str, scenario: None
) -> None:
    # Both scenario runs counted, each by the service that owns the figure.
    business = {
        "leadflow-marketing": ("leadflow_marketing_leads_captured_total", 'channel="web"'),
        "leadflow-sales": ("leadflow_sales_deals_closed_total", 'outcome="won"'),
        "leadflow-orders": ("leadflow_orders_created_total", 'currency="EUR"'),
    }
    for job, (metric, matcher) in business.items():
        counted = f'sum({metric}{{job="{job}", {matcher}}}) >= 2'
        assert eventually(partial(query, prometheus, counted), timeout=30), job
    for job in JOBS:
        (faust,) = query(prometheus, f'count({{__name__=~"leadflow_faust_.+", job="{job}"}})')
        assert int(faust["value"][1]) > 20, job
    # Each service exposes its own business metrics and no other's.
    owners = query(
        prometheus, 'group by (job, __name__) ({__name__=~"leadflow_(marketing|sales|orders|webhooks)_.+"})'
    )
    assert owners
    for owner in owners:
        assert owner["metric"]["__name__"].startswith(f"leadflow_{JOBS[owner['metric']['job']]}_")
    assert {s["metric"]["job"] for s in owners} == JOBS.keys()


def test_prometheus_counts_http_requests_by_route_template(
    system: dict[str, Worker], prometheus: str, scenario: None
) -> None:
    # The scenario's two runs, each under the template of the route that answered.
    answered = {
        "marketing": ("/leads", "POST"),
        "sales": ("/deals/{deal_id}/close", "POST"),
        "orders": ("/orders", "GET"),
    }
    for service, (handler, method) in answered.items():
        route = f'job="leadflow-{service}", handler="{handler}", method="{method}"'
        counted = f'sum(leadflow_http_requests_total{{{route}, status="2xx"}}) >= 2'
        assert eventually(partial(query, prometheus, counted), timeout=30), service
        assert query(prometheus, f"sum(leadflow_http_request_duration_seconds_count{{{route}}}) >= 2"), (
            service
        )
    # Every handler is one of the service's route templates (or "none", for a
    # path no route serves); scrapes and probes are not counted.
    seen = query(prometheus, "group by (job, handler) (leadflow_http_requests_total)")
    for service, worker in system.items():
        templates = set(api.get(f"{worker.url}/openapi.json", timeout=10).json()["paths"])
        templates |= {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # FastAPI's own
        handlers = {s["metric"]["handler"] for s in seen if s["metric"]["job"] == f"leadflow-{service}"}
        assert answered[service][0] in handlers, service
        assert handlers <= (templates - {"/metrics", "/healthz", "/readyz"}) | {"none"}, service


def test_alert_rules_load_evaluate_and_see_the_dead_letter(prometheus: str, scenario: None) -> None:
    def evaluated() -> list[dict[str, Any]]:
        groups = api.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("2") for r in rules) else []

    rules = eventually(evaluated, timeout=30)
    assert {r["name"] for r in rules if r["type"] == "alerting"} >= {
        "LeadflowDeadLetters",
        "LeadflowServiceDown",
    }
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []

    def dead_letter_alert() -> list[dict[str, Any]]:
        alerts = api.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "LeadflowDeadLetters"
            and a["labels"].get("job") == "leadflow-orders"
            and a["labels"].get("topic") == "leadflow-orders-commands"
        ]

    (alert,) = eventually(dead_letter_alert, timeout=30)
    assert alert["state"] in ("pending", "firing")
    # The recording rule turns the workers' offsets into lag, per service and topic:
    # orders has caught up with every deal.closed of the scenario.
    caught_up = 'leadflow:consumer_lag:sum{job="leadflow-orders", topic="deal.closed"} == 0'
    assert eventually(partial(query, prometheus, caught_up), timeout=30)
    # With every worker up, nothing says a service is down or missing.
    alerts = api.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    names = {a["labels"]["alertname"] for a in alerts}
    assert not names & {"LeadflowServiceDown", "LeadflowServiceMissing"}


def families(exposition: str) -> dict[str, Any]:
    """Metric families by name; the _created series prometheus_client adds are not families."""
    found = {f.name: f for f in text_string_to_metric_families(exposition)}
    return {
        n: f for n, f in found.items() if not (n.endswith("_created") and n.removesuffix("_created") in found)
    }


def exposed_names(expositions: dict[str, str]) -> set[str]:
    """Every series name a scrape of the services yields (declared families included,
    also those with no sample yet), plus Prometheus' own `up`."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = {"up"}
    for text in expositions.values():
        for name, family in families(text).items():
            names |= {name + suffix for suffix in suffixes.get(family.type, ("",))}
            names |= {sample.name for sample in family.samples}
    return names


def test_live_metrics_follow_the_naming_conventions(expositions: dict[str, str]) -> None:
    for service, text in expositions.items():
        found = families(text)
        assert any(n.startswith(f"leadflow_{service}_") for n in found), service
        assert "leadflow_dead_letters" in found
        assert any(n.startswith("leadflow_faust_") for n in found)
        for name, family in found.items():
            where = f"{service}: {name}"
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), where
            # Only ours, or the client library's standard process/runtime collectors.
            assert name.startswith(("leadflow_", "process_", "python_")), where
            assert not name.endswith(("_total", "_count", "_sum", "_bucket")), where
            if family.type == "counter":
                assert all(s.name.endswith(("_total", "_created")) for s in family.samples), where
            if not name.startswith("leadflow_") or name.startswith("leadflow_faust_"):
                # Faust's own names (milliseconds, no unit suffixes) are the library's to choose.
                continue
            assert not NON_BASE_UNITS.search(name), f"{where}: use base units (seconds, bytes, ratio)"
            if family.type == "histogram":
                assert name.endswith(HISTOGRAM_UNITS), f"{where}: a histogram names its unit"
            if re.search(r"(latency|duration|time_to|_age|_time)(_|$)", name):
                assert name.endswith("_seconds"), f"{where}: time is measured in seconds"
            if name.endswith("_ratio"):
                assert all(0 <= s.value <= 1 for s in family.samples), where
            assert family.documentation.strip(), f"{where}: needs a HELP text"


def test_live_metrics_carry_no_unbounded_labels(expositions: dict[str, str]) -> None:
    for service, text in expositions.items():
        for _name, family in families(text).items():
            for sample in family.samples:
                where = f"{service}: {sample.name}{sample.labels}"
                assert not UNBOUNDED_LABELS & sample.labels.keys(), where
                for label, value in sample.labels.items():
                    assert not EMAIL.search(value), where
                    # Campaign ids are the one id label: few, and created by marketing staff.
                    if label != "campaign_id":
                        assert not UUID.search(value), where


def promql_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    keywords = {"and", "or", "unless", "offset", "bool", "inf", "nan", "e"}
    return {n for n in names if n.lower() not in keywords}


def test_promql_names_are_found_in_expressions() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (job, le) (rate("
        'leadflow_faust_events_runtime_ms_bucket{namespace="$namespace"}[$__rate_interval]'
        "))) / 1000 and on() max(up) > 3 or vector(0)"
    )
    assert promql_names(expr) == {"leadflow_faust_events_runtime_ms_bucket", "up"}


def dashboard_panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_dashboard_queries_only_metrics_the_services_expose(expositions: dict[str, str]) -> None:
    exposed = exposed_names(expositions)
    for panel in dashboard_panels():
        for target in panel["targets"]:
            unknown = promql_names(target["expr"]) - exposed
            assert not unknown, f"panel {panel['title']!r} queries {sorted(unknown)}, not exposed"


def test_alert_rules_query_only_metrics_that_exist(expositions: dict[str, str]) -> None:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    known = exposed_names(expositions) | recorded | EXTERNAL_SERIES
    for group in groups:
        for rule in group["rules"]:
            unknown = promql_names(rule["expr"]) - known
            assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {sorted(unknown)}"


def test_dashboard_queries_run_on_prometheus_and_show_the_funnel(prometheus: str, scenario: None) -> None:
    variables = {"$namespace": "leadflow", "$__range": "1h", "$__rate_interval": "1m"}
    panels = dashboard_panels()
    titles = " | ".join(p["title"] for p in panels).lower()
    for topic in ("funnel", "conversion", "consumer lag", "throughput", "latency", "dead letters"):
        assert topic in titles, topic
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(name, value)
            query(prometheus, expr)  # valid PromQL, answered
    (funnel,) = [p for p in panels if p["title"] == "Funnel"]
    steps = [t["legendFormat"] for t in funnel["targets"]]
    assert steps == ["Leads captured", "Qualified (MQL)", "Deals opened", "Deals won", "Orders"]

    def counts() -> dict[str, float]:
        found = {}
        for target in funnel["targets"]:
            expr = target["expr"].replace("$namespace", "leadflow").replace("$__range", "1h")
            result = query(prometheus, expr)
            found[target["legendFormat"]] = float(result[0]["value"][1]) if result else 0.0
        return found

    # Each step counted the scenario's second lead (at least), as Prometheus saw it happen.
    try:
        eventually(lambda: all(v >= 0.9 for v in counts().values()), timeout=30)
    except AssertionError:
        pytest.fail(f"funnel steps not counted: {counts()}")
