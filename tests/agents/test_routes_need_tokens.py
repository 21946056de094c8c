"""Every route of every service, hidden ones included, answers 401 without a token
and 403 with a valid token holding no scope; only the operations endpoints stay
open. /docs shows each route's scope."""

import importlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from schemas.access import SCOPES, LocalIssuer
from services.runtime.auth import TokenVerifier
from services.runtime.service import ServiceRuntime

OPEN = {"/healthz", "/readyz", "/metrics"}
SERVICES = ["marketing", "sales", "orders", "webhooks"]


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer(tmp_path_factory.mktemp("issuer")).ensure_keys()


@pytest.fixture(params=SERVICES)
def runtime(request: pytest.FixtureRequest, issuer: LocalIssuer) -> Iterator[ServiceRuntime]:
    importlib.import_module(f"services.{request.param}.views")  # declares the routes
    runtime: ServiceRuntime = importlib.import_module(f"services.{request.param}.app").runtime
    env = issuer.service_env()
    settings = runtime.settings.model_copy(
        update={
            "auth_issuer": env["LEADFLOW_AUTH_ISSUER"],
            "auth_audience": env["LEADFLOW_AUTH_AUDIENCE"],
            "auth_public_key_file": issuer.public_key_file,
        }
    )
    before = runtime.auth._verifier
    runtime.auth._verifier = TokenVerifier(settings)
    yield runtime
    runtime.auth._verifier = before


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole)
            yield from api_routes(route.original_router.routes)


def routes(runtime: ServiceRuntime) -> list[tuple[str, str]]:
    found = []
    for route in api_routes(runtime.api.routes):
        if route.path not in OPEN:
            path = re.sub(r"\{[^}]+\}", "x-1", route.path)
            found += [(method, path) for method in sorted(route.methods or ())]
    return found


async def answers(runtime: ServiceRuntime, token: str | None) -> dict[tuple[str, str], int]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=runtime.api, raise_app_exceptions=False)
    statuses = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as client:
        for method, path in routes(runtime):
            body: Any = {} if method in ("POST", "PATCH", "PUT") else None
            answer = await client.request(method, path, json=body, headers=headers)
            statuses[(method, path)] = answer.status_code
    return statuses


async def test_no_route_answers_without_a_token(runtime: ServiceRuntime, issuer: LocalIssuer) -> None:
    statuses = await answers(runtime, None)
    assert len(statuses) >= 3
    assert {route: s for route, s in statuses.items() if s != 401} == {}
    expired = issuer.token(lifetime_seconds=-120)
    statuses = await answers(runtime, expired)
    assert {route: s for route, s in statuses.items() if s != 401} == {}


async def test_no_route_answers_a_token_without_its_scope(
    runtime: ServiceRuntime, issuer: LocalIssuer
) -> None:
    statuses = await answers(runtime, issuer.token(scopes=[]))
    assert {route: s for route, s in statuses.items() if s != 403} == {}


def test_docs_show_each_operation_s_scope(runtime: ServiceRuntime) -> None:
    document = runtime.api.openapi()
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in OPEN:
                assert "security" not in operation, (method, path)
                continue
            [requirement] = operation["security"]
            [scope] = requirement["HTTPBearer"]
            assert scope in SCOPES, (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
