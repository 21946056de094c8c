"""Tokens on real workers: two orders workers share the partitions, so requests are
forwarded and lists gathered between them. The caller's token travels with them
and is checked again where they land; the forwarding header opens nothing; and a
worker without a token issuer refuses to start."""

import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SERVICE_PORTS
from tests.system import ISSUER, PORT_BASE, Worker, api, eventually

PORTS = (PORT_BASE + 12, PORT_BASE + 13, PORT_BASE + 14)


@pytest.fixture
def two_workers(system: dict[str, Worker]) -> Iterator[tuple[Worker, Worker]]:
    assert not set(PORTS) & set(SERVICE_PORTS.values())
    env = {"LEADFLOW_APP_ID": f"leadflow-orders-tokens-{uuid.uuid4().hex[:8]}"}
    workers = (Worker("orders", PORTS[0], env=env), Worker("orders", PORTS[1], env=env))
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready(timeout=120)
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def answered(worker: Worker, status: str) -> float:
    """GET /orders/{order_id} requests this worker answered with `status` (e.g. "4xx")."""
    metrics = httpx.get(f"{worker.url}/metrics", timeout=10).text  # open, no token
    wanted = ('handler="/orders/{order_id}"', 'method="GET"', f'status="{status}"')
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("leadflow_http_requests_total{") and all(w in line for w in wanted)
    )


def settled(url: str) -> httpx.Response:
    """The answer once partitions stopped moving (no 503)."""
    answer: httpx.Response = eventually(lambda: (got := api.get(url, timeout=20)).status_code != 503 and got)
    return answer


def test_the_caller_s_token_travels_with_forwarded_requests_and_is_checked_where_they_land(
    two_workers: tuple[Worker, Worker],
) -> None:
    first, second = two_workers
    order_ids = [f"order-lead-tok-{uuid.uuid4().hex[:10]}" for _ in range(24)]

    # With a valid token: every id answers 404 from its owner. Those the second
    # worker owns were forwarded there, and it answered them too: it checked the
    # token that came along (a dropped Authorization header would be a 401).
    before = answered(second, "4xx")
    for order_id in order_ids:
        answer = settled(f"{first.url}/orders/{order_id}")
        assert answer.status_code == 404, answer.text
    assert answered(second, "4xx") > before
    # A list gathers every worker's part: each checks the token it was sent.
    listed = settled(f"{second.url}/orders")
    assert listed.status_code == 200, listed.text

    # Without one, or without the scope: refused on the worker that took the request.
    for worker in two_workers:
        bare = httpx.get(f"{worker.url}/orders/{order_ids[0]}", timeout=20)
        assert bare.status_code == 401, bare.text
        assert bare.headers["www-authenticate"].startswith("Bearer")
        unscoped = {"Authorization": f"Bearer {ISSUER.token(scopes=['deals:read'])}"}
        refused = httpx.post(
            f"{worker.url}/orders/{order_ids[0]}/status", json={"status": "confirmed"}, headers=unscoped
        )
        assert refused.status_code == 403, refused.text
        assert "orders:write" in refused.text

    # The headers workers set for each other grant nothing by themselves.
    for header in ("x-leadflow-forwarded", "x-leadflow-local"):
        for worker in two_workers:
            sneaked = httpx.get(f"{worker.url}/orders", headers={header: "1"}, timeout=20)
            assert sneaked.status_code == 401, (header, sneaked.text)


def test_a_worker_without_a_token_issuer_refuses_to_start(system: dict[str, Worker]) -> None:
    worker = Worker("orders", PORTS[2], env={"LEADFLOW_AUTH_ISSUER": ""})
    worker.start()
    assert worker.process is not None
    try:
        code = worker.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.stop()
        raise AssertionError("a worker with no token issuer started anyway") from None
    assert code != 0
    assert "LEADFLOW_AUTH_ISSUER" in worker.tail()
