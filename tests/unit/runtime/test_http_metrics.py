"""HTTP request metrics: what a request to a route adds to the default registry
that /metrics serves, with the instrumentation every ServiceRuntime installs."""

import uuid

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from services.runtime.http_metrics import instrument_http

REQUESTS = "leadflow_http_requests_total"
DURATION = "leadflow_http_request_duration_seconds_count"


def small_app() -> FastAPI:
    """Routes shaped like a service's: an included router, a path parameter,
    the operations endpoints, and a route that fails."""
    api = FastAPI()
    instrument_http(api)
    router = APIRouter()

    @router.get("/deals/{deal_id}")
    async def deal(deal_id: str) -> dict[str, str]:
        return {"deal_id": deal_id}

    @router.post("/deals/{deal_id}/close")
    async def close(deal_id: str) -> dict[str, str]:
        raise RuntimeError(f"cannot close {deal_id}")

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/metrics")
    async def metrics() -> dict[str, str]:
        return {}

    api.include_router(router)
    return api


def client(api: FastAPI) -> httpx.AsyncClient:
    # A route's exception becomes the 500 the server would answer.
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://leadflow.test")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def http_label_values() -> set[str]:
    return {
        value
        for family in REGISTRY.collect()
        if family.name.startswith("leadflow_http_")
        for s in family.samples
        for value in s.labels.values()
    }


async def test_a_request_counts_under_its_route_template() -> None:
    http = client(small_app())
    template = {"handler": "/deals/{deal_id}", "method": "GET"}
    before = sample(REQUESTS, **template, status="2xx"), sample(DURATION, **template)

    for _ in range(2):
        assert (await http.get(f"/deals/deal-{uuid.uuid4()}")).status_code == 200

    assert sample(REQUESTS, **template, status="2xx") == before[0] + 2
    assert sample(DURATION, **template) == before[1] + 2


async def test_a_failing_route_counts_as_5xx_under_its_template() -> None:
    http = client(small_app())
    labels = {"handler": "/deals/{deal_id}/close", "method": "POST", "status": "5xx"}
    before = sample(REQUESTS, **labels)

    assert (await http.post("/deals/deal-1/close")).status_code == 500

    assert sample(REQUESTS, **labels) == before + 1


async def test_unrouted_paths_count_as_none_and_ids_never_become_labels() -> None:
    http = client(small_app())
    lead_id = str(uuid.uuid4())
    not_found = {"handler": "none", "method": "GET", "status": "4xx"}
    redirected = {"handler": "none", "method": "GET", "status": "3xx"}
    made_up = {"handler": "none", "method": "other", "status": "4xx"}
    before = sample(REQUESTS, **not_found), sample(REQUESTS, **redirected), sample(REQUESTS, **made_up)

    assert (await http.get(f"/nothing/{lead_id}")).status_code == 404
    # The trailing slash is redirected to the route; the path is not a template.
    assert (await http.get(f"/deals/deal-{lead_id}/", follow_redirects=False)).status_code == 307
    assert (await http.request(f"X{lead_id[:8].upper()}", f"/other/{lead_id}")).status_code == 404

    assert sample(REQUESTS, **not_found) == before[0] + 1
    assert sample(REQUESTS, **redirected) == before[1] + 1
    assert sample(REQUESTS, **made_up) == before[2] + 1
    assert not [value for value in http_label_values() if lead_id in value or lead_id[:8].upper() in value]


async def test_scrapes_and_probes_are_not_counted() -> None:
    http = client(small_app())

    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/metrics")).status_code == 200

    assert not {"/healthz", "/metrics", "/readyz"} & http_label_values()


async def test_apps_of_one_process_share_the_collectors() -> None:
    # Several services imported into one process (as the tests do) each install
    # the instrumentation; the collectors are registered once and all count.
    first, second = client(small_app()), client(small_app())
    labels = {"handler": "/deals/{deal_id}", "method": "GET", "status": "2xx"}
    before = sample(REQUESTS, **labels)

    assert (await first.get("/deals/deal-a")).status_code == 200
    assert (await second.get("/deals/deal-b")).status_code == 200

    assert sample(REQUESTS, **labels) == before + 2
