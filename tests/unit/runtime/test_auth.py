"""Bearer tokens on the API: each way a token can be wrong is refused with 401 and a
reason, a token without the route's scope with 403 naming it, and only a valid
token with the scope gets through. Keys come from a public key file or a real
JWKS endpoint (a local HTTP server), as an OIDC issuer serves them."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse

from schemas.access import SCOPES
from services.runtime.auth import (
    Authorizer,
    Forbidden,
    NotConfigured,
    Principal,
    TokenVerifier,
    Unauthenticated,
)
from services.runtime.body_limit import BodyLimit
from services.runtime.settings import ServiceSettings

ISSUER = "https://issuer.example.test"
AUDIENCE = "leadflow"


class Keys:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "rep-anna",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "scope": "deals:read deals:write",
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid})


KEYS = Keys("key-1")


def settings(**overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "service": "sales",
        "web_port": 8002,
        "auth_issuer": ISSUER,
        "auth_audience": AUDIENCE,
        "auth_leeway_seconds": 5,
    }
    values.update(overrides)
    return ServiceSettings(**values)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "issuer.pem"
    path.write_bytes(KEYS.public_pem)
    return path


def small_app(config: ServiceSettings) -> FastAPI:
    auth = Authorizer(config)
    api = FastAPI()
    api.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)

    @api.exception_handler(Unauthenticated)
    @api.exception_handler(Forbidden)
    async def refused(_: Request, error: Unauthenticated | Forbidden) -> JSONResponse:
        return error.response()

    @api.post("/deals/{deal_id}/close")
    async def close(
        deal_id: str, who: Annotated[Principal, Security(auth.dependency, scopes=["deals:write"])]
    ) -> dict[str, str]:
        return {"deal_id": deal_id, "by": who.subject}

    @api.get("/orders")
    async def orders(
        who: Annotated[Principal, Security(auth.dependency, scopes=["orders:read"])],
    ) -> dict[str, str]:
        return {"by": who.subject}

    @api.post("/echo")
    async def echo(request: Request, _: Annotated[Principal, Security(auth.dependency)]) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @api.get("/metrics")
    async def metrics(request: Request) -> dict[str, str]:
        auth.check_metrics(request)
        return {}

    return api


async def call(
    api: FastAPI, method: str, path: str, token: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://sales.test") as client:
        return await client.request(method, path, headers=headers, **kwargs)


def refused_401(answer: httpx.Response, reason: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    [problem] = answer.json()["detail"]
    assert reason in problem["msg"], problem


async def test_a_valid_token_with_the_scope_gets_through_and_names_the_caller(key_file: Path) -> None:
    api = small_app(settings(auth_public_key_file=key_file))
    answer = await call(api, "POST", "/deals/deal-1/close", KEYS.token())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"deal_id": "deal-1", "by": "rep-anna"}


# Tokens are made when each test runs, not at collection: a long suite would
# reach them after their five minutes.
BAD_TOKENS: dict[str, tuple[Callable[[], str | None], str]] = {
    "missing": (lambda: None, "Authorization: Bearer token is required"),
    "garbage": (lambda: "not-a-jwt", "not a JWT"),
    "expired": (lambda: KEYS.token(exp=int(time.time()) - 60), "expired"),
    "not-yet-valid": (lambda: KEYS.token(nbf=int(time.time()) + 120), "not yet valid"),
    "audience": (lambda: KEYS.token(aud="billing"), "Audience"),
    "issuer": (lambda: KEYS.token(iss="https://evil.example.test"), "issuer"),
    "no-sub": (lambda: KEYS.token(sub=None), "sub"),
    "no-exp": (lambda: KEYS.token(exp=None), "exp"),
    "forged": (lambda: Keys("key-1").token(), "Signature verification failed"),  # same kid, another key
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_is_refused_with_401_and_the_reason(key_file: Path, case: str) -> None:
    make, reason = BAD_TOKENS[case]
    api = small_app(settings(auth_public_key_file=key_file))
    refused_401(await call(api, "POST", "/deals/deal-1/close", make()), reason)


async def test_a_token_within_the_leeway_is_accepted(key_file: Path) -> None:
    api = small_app(settings(auth_public_key_file=key_file, auth_leeway_seconds=30))
    answer = await call(api, "POST", "/deals/deal-1/close", KEYS.token(exp=int(time.time()) - 10))
    assert answer.status_code == 200, answer.text


class _Decodes:
    """Counts the signature checks PyJWT makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = jwt.decode

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr("services.runtime.auth.jwt.decode", counted)


def _clocked(key_file: Path, now: list[float], **overrides: Any) -> TokenVerifier:
    """A verifier caching for 60 s whose cache reads the clock `now[0]`."""
    config = settings(auth_public_key_file=key_file, auth_token_cache_seconds=60, **overrides)
    return TokenVerifier(config, clock=lambda: now[0])


async def test_a_token_that_passed_is_remembered_until_its_expiry_and_no_longer(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = _Decodes(monkeypatch)
    now = [time.time()]
    verifier = _clocked(key_file, now, auth_leeway_seconds=5)
    # Expired 3 s ago, accepted within the 5 s leeway: good for 2 s more.
    token = KEYS.token(exp=int(now[0]) - 3)
    for _ in range(3):
        assert (await verifier.verify(token)).subject == "rep-anna"
    assert decodes.count == 1
    now[0] += 2.5  # past exp + leeway
    await verifier.verify(token)
    assert decodes.count == 2


async def test_a_remembered_token_is_checked_again_after_the_cache_time(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = _Decodes(monkeypatch)
    now = [time.time()]
    verifier = _clocked(key_file, now)
    token = KEYS.token(exp=int(now[0]) + 3600)
    await verifier.verify(token)
    now[0] += 59
    await verifier.verify(token)
    assert decodes.count == 1
    now[0] += 2
    await verifier.verify(token)
    assert decodes.count == 2
    # 0 turns the cache off.
    uncached = TokenVerifier(settings(auth_public_key_file=key_file, auth_token_cache_seconds=0))
    for _ in range(2):
        await uncached.verify(token)
    assert decodes.count == 4


async def test_a_refused_token_is_not_remembered_and_a_remembered_one_still_needs_the_scope(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = _Decodes(monkeypatch)
    api = small_app(settings(auth_public_key_file=key_file))
    forged = Keys("key-1").token()
    for _ in range(2):
        refused_401(await call(api, "POST", "/deals/deal-1/close", forged), "Signature verification failed")
    assert decodes.count == 2
    token = KEYS.token()
    assert (await call(api, "POST", "/deals/deal-1/close", token)).status_code == 200
    assert (await call(api, "GET", "/orders", token)).status_code == 403
    assert decodes.count == 3


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_alg_none_and_an_hmac_token_keyed_with_the_public_key_are_refused(key_file: Path) -> None:
    api = small_app(settings(auth_public_key_file=key_file))
    claims = jwt.decode(KEYS.token(), options={"verify_signature": False})
    refused_401(await call(api, "POST", "/deals/deal-1/close", _unsigned(claims)), "'none' is not accepted")
    # The classic confusion: HS256 with the RSA public key (PEM) as the shared secret.
    hmac_token = _hs256_with(KEYS.public_pem, claims)
    refused_401(await call(api, "POST", "/deals/deal-1/close", hmac_token), "'HS256' is not accepted")


def _hs256_with(secret: bytes, claims: dict[str, Any]) -> str:
    # PyJWT refuses a PEM as an HMAC secret itself; sign by hand as an attacker would.
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KEYS.kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


async def test_a_valid_token_without_the_scope_gets_403_naming_it(key_file: Path) -> None:
    api = small_app(settings(auth_public_key_file=key_file))
    answer = await call(api, "GET", "/orders", KEYS.token())
    assert answer.status_code == 403, answer.text
    assert answer.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="orders:read"'
    [problem] = answer.json()["detail"]
    assert problem["scopes"] == ["orders:read"]
    assert "orders:read" in problem["msg"]
    # Scopes as a list (`scp`), as some issuers send them.
    answer = await call(api, "GET", "/orders", KEYS.token(scope=None, scp=["orders:read"]))
    assert answer.status_code == 200, answer.text


class _Jwks:
    """A JWKS endpoint on a real local HTTP server; counts its fetches."""

    def __init__(self) -> None:
        self.keys: list[Keys] = [KEYS]
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in jwks.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    endpoint = _Jwks()
    yield endpoint
    endpoint.server.shutdown()


async def test_keys_from_a_jwks_url_are_cached_and_fetched_again_for_a_new_kid(jwks: _Jwks) -> None:
    api = small_app(settings(auth_jwks_url=jwks.url, auth_jwks_refresh_cooldown_seconds=0))
    for _ in range(3):
        assert (await call(api, "POST", "/deals/deal-1/close", KEYS.token())).status_code == 200
    assert jwks.fetches == 1
    # The issuer rotates: a token signed with a key the cache has not seen yet.
    rotated = Keys("key-2")
    jwks.keys.append(rotated)
    assert (await call(api, "POST", "/deals/deal-1/close", rotated.token())).status_code == 200
    assert jwks.fetches == 2
    # A kid the issuer does not publish at all.
    unknown = Keys("key-unknown").token()
    refused_401(await call(api, "POST", "/deals/deal-1/close", unknown), "no key of the issuer")


def test_without_an_issuer_and_its_keys_the_service_does_not_start(key_file: Path, tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="LEADFLOW_AUTH_ISSUER"):
        TokenVerifier(settings(auth_issuer=None, auth_public_key_file=key_file))
    with pytest.raises(NotConfigured, match="one of"):
        TokenVerifier(settings())
    with pytest.raises(NotConfigured, match="one of"):
        TokenVerifier(
            settings(auth_public_key_file=key_file, auth_jwks_url="https://issuer.example.test/jwks")
        )
    with pytest.raises(NotConfigured, match="cannot use"):
        TokenVerifier(settings(auth_public_key_file=tmp_path / "missing.pem"))
    # An EC key where RS256 is configured: refused at start, not at the first request.
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(NotConfigured, match="cannot use"):
        TokenVerifier(settings(auth_public_key_file=ec_key))


def test_only_asymmetric_algorithms_can_be_configured() -> None:
    for algorithm in ("HS256", "none"):
        with pytest.raises(ValueError, match="auth_algorithms"):
            settings(auth_algorithms=[algorithm])


async def test_metrics_are_open_unless_a_prometheus_token_is_set(key_file: Path) -> None:
    open_api = small_app(settings(auth_public_key_file=key_file))
    assert (await call(open_api, "GET", "/metrics")).status_code == 200
    guarded = small_app(settings(auth_public_key_file=key_file, metrics_token="scrape-secret"))
    refused_401(await call(guarded, "GET", "/metrics"), "Prometheus bearer token")
    refused_401(await call(guarded, "GET", "/metrics", KEYS.token()), "Prometheus bearer token")
    assert (await call(guarded, "GET", "/metrics", "scrape-secret")).status_code == 200


async def test_a_body_over_the_limit_is_refused_with_413(key_file: Path) -> None:
    api = small_app(settings(auth_public_key_file=key_file, max_body_bytes=2048))
    token = KEYS.token()
    assert (await call(api, "POST", "/echo", token, content=b"x" * 2048)).json() == {"bytes": 2048}
    answer = await call(api, "POST", "/echo", token, content=b"x" * 2049)
    assert answer.status_code == 413
    assert "larger than 2048 bytes" in answer.json()["detail"][0]["msg"]

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 1000

    answer = await call(api, "POST", "/echo", token, content=chunks())
    assert answer.status_code == 413, answer.text


async def test_with_the_issuer_s_token_endpoint_docs_offer_the_client_credentials_flow(
    key_file: Path,
) -> None:
    plain = small_app(settings(auth_public_key_file=key_file)).openapi()
    assert set(plain["components"]["securitySchemes"]) == {"HTTPBearer"}
    token_url = "https://issuer.example.test/oauth2/token"
    api = small_app(settings(auth_public_key_file=key_file, auth_token_url=token_url))
    document = api.openapi()
    flow = document["components"]["securitySchemes"]["OAuth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == token_url
    assert set(flow["scopes"]) == set(SCOPES)
    # Either scheme, each with the route's scope; the same bearer header works.
    security = document["paths"]["/deals/{deal_id}/close"]["post"]["security"]
    assert {"HTTPBearer": ["deals:write"]} in security
    assert {"OAuth2": ["deals:write"]} in security
    assert (await call(api, "POST", "/deals/deal-1/close", KEYS.token())).status_code == 200
    refused_401(await call(api, "POST", "/deals/deal-1/close"), "Bearer token is required")
