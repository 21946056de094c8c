"""Every API route takes an OAuth2 bearer token: a JWT from the deployment's issuer.

The token's signature is checked with the issuer's keys (its JWKS URL, cached and
fetched again for an unknown key id; or a public key file), its `iss`, `aud`,
`exp` and `nbf` with a small leeway, and its algorithm against the configured
list, never the token's own say: only asymmetric algorithms can be configured,
so neither `alg: none` nor an HMAC token "signed" with the public key passes.
Each route then names the scope it needs (schemas/access.py lists them).

A request one worker forwards to another keeps its Authorization header and is
checked again where it is applied (services/runtime/cluster.py).

A token that passed is remembered until it expires, for at most
`LEADFLOW_AUTH_TOKEN_CACHE_SECONDS`: a client sends the same token with every
request, and checking its signature again cost a tenth of a millisecond of the
worker's one core, and a thread hop for the JWKS lookup. The JWKS keys are
cached for 5 minutes already, so a key the issuer withdraws stops being trusted
no later than it did before.
"""

import asyncio
import contextvars
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from cachetools import TLRUCache
from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2, SecurityScopes

from schemas.access import SCOPES
from services.runtime.settings import ServiceSettings

# The caller's token, for the requests this worker makes to others on its behalf.
caller_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller_token", default=None)

bearer = HTTPBearer(
    bearerFormat="JWT",
    auto_error=False,
    description="An OAuth2 access token (JWT) from the deployment's issuer. Scopes: "
    + "; ".join(f"`{scope}` {what.lower()}" for scope, what in SCOPES.items()),
)


@dataclass(frozen=True)
class Principal:
    """Who called: the token's subject and what it may do."""

    subject: str
    scopes: frozenset[str]
    # The token's `exp`: it is not remembered past it.
    expires: float = 0.0


class Unauthenticated(Exception):
    """No token, or one that fails a check: 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def response(self) -> JSONResponse:
        challenge = f'Bearer error="invalid_token", error_description="{_quoted(self.reason)}"'
        return JSONResponse(
            {"detail": [{"msg": self.reason, "type": "invalid_token"}]},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )


class Forbidden(Exception):
    """A valid token without the scope the route needs: 403."""

    def __init__(self, scopes: list[str]) -> None:
        self.scopes = scopes
        super().__init__(f"this needs the scope {' '.join(scopes)}")

    def response(self) -> JSONResponse:
        needed = " ".join(self.scopes)
        return JSONResponse(
            {"detail": [{"msg": str(self), "type": "insufficient_scope", "scopes": self.scopes}]},
            status_code=403,
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )


class NotConfigured(Exception):
    """No issuer is set: the service refuses to start rather than run open."""


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


class TokenVerifier:
    """Checks tokens against the configured issuer; raises Unauthenticated."""

    # Distinct tokens remembered at most: one per client, with room for rotation.
    CACHE_SIZE = 10_000

    def __init__(self, settings: ServiceSettings, clock: Callable[[], float] = time.time) -> None:
        if not settings.auth_issuer:
            raise NotConfigured("set LEADFLOW_AUTH_ISSUER: every API route takes a token from an issuer")
        if (settings.auth_jwks_url is None) == (settings.auth_public_key_file is None):
            raise NotConfigured(
                "set one of LEADFLOW_AUTH_JWKS_URL and LEADFLOW_AUTH_PUBLIC_KEY_FILE: the issuer's keys"
            )
        self.issuer = settings.auth_issuer
        self.audience = settings.auth_audience
        self.algorithms = list(settings.auth_algorithms)
        self.leeway = settings.auth_leeway_seconds
        self.cache_seconds = settings.auth_token_cache_seconds
        # Wall-clock time, as `exp` is; a token is remembered until `exp` plus the
        # leeway it was accepted with, or cache_seconds, whichever comes first.
        self._passed: TLRUCache[str, Principal] = TLRUCache(
            maxsize=self.CACHE_SIZE, ttu=self._remember_until, timer=clock
        )
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if settings.auth_jwks_url is not None:
            # Keys cached for 5 minutes; an unknown kid fetches the set again, at most
            # once per cooldown, so a flood of made-up kids cannot flood the issuer.
            self._jwks = jwt.PyJWKClient(
                str(settings.auth_jwks_url),
                cache_keys=True,
                lifespan=300,
                timeout=5,
                cooldown_duration=settings.auth_jwks_refresh_cooldown_seconds,
            )
        else:
            assert settings.auth_public_key_file is not None
            try:
                pem = settings.auth_public_key_file.read_bytes()
                # Refuses, at start, a key of the wrong type for the algorithm.
                self._key = jwt.get_algorithm_by_name(self.algorithms[0]).prepare_key(pem)
            except (OSError, ValueError, jwt.InvalidKeyError) as unusable:
                raise NotConfigured(f"cannot use the issuer's public key: {unusable}") from unusable

    def _remember_until(self, _token: str, principal: Principal, now: float) -> float:
        return min(now + self.cache_seconds, principal.expires + self.leeway)

    async def verify(self, token: str) -> Principal:
        principal = self._passed.get(token)
        if principal is not None:
            return principal
        principal = await self._check(token)
        if self.cache_seconds > 0:
            self._passed[token] = principal
        return principal

    async def _check(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as bad:
            raise Unauthenticated(f"not a JWT: {bad}") from bad
        if header.get("alg") not in self.algorithms:
            raise Unauthenticated(f"algorithm {header.get('alg')!r} is not accepted")
        key = self._key
        if self._jwks is not None:
            try:
                # PyJWKClient fetches with urllib: off the event loop.
                key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            except jwt.PyJWKClientError as unknown:
                raise Unauthenticated(f"no key of the issuer verifies it: {unknown}") from unknown
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as bad:
            raise Unauthenticated(str(bad) or type(bad).__name__) from bad
        return Principal(subject=str(claims["sub"]), scopes=_scopes(claims), expires=float(claims["exp"]))


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    # OAuth2's `scope` (space separated); some issuers send a `scp` list instead.
    scope = claims.get("scope", claims.get("scp", ""))
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list):
        return frozenset(str(s) for s in scope)
    return frozenset()


def subject_of(request: Request) -> str | None:
    """Who made `request`: its token's subject, once the route's check passed."""
    principal = getattr(request.state, "principal", None)
    return principal.subject if isinstance(principal, Principal) else None


async def _no_token_endpoint() -> None:
    return None


class Authorizer:
    """Checks the caller's token on a route: `Security(runtime.auth.dependency, scopes=[...])`
    (ServiceRuntime.requires does that)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._verifier: TokenVerifier | None = None
        # With the issuer's token endpoint, /docs offers OAuth2's client-credentials
        # flow too (its Authorize button then gets a token); the header is the same.
        flow: Any = _no_token_endpoint
        if settings.auth_token_url is not None:
            flows = OAuthFlows(
                clientCredentials=OAuthFlowClientCredentials(
                    tokenUrl=str(settings.auth_token_url), scopes=SCOPES
                )
            )
            flow = OAuth2(flows=flows, scheme_name="OAuth2", auto_error=False)

        async def dependency(
            request: Request,
            security_scopes: SecurityScopes,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
            _: Annotated[Any, Depends(flow)],
        ) -> Principal:
            return await self.authorize(request, security_scopes.scopes, credentials)

        self.dependency = dependency

    @property
    def verifier(self) -> TokenVerifier:
        if self._verifier is None:
            self._verifier = TokenVerifier(self.settings)
        return self._verifier

    async def authorize(
        self, request: Request, scopes: list[str], credentials: HTTPAuthorizationCredentials | None
    ) -> Principal:
        if credentials is None:
            raise Unauthenticated("an Authorization: Bearer token is required")
        principal = await self.verifier.verify(credentials.credentials)
        missing = [scope for scope in scopes if scope not in principal.scopes]
        if missing:
            raise Forbidden(missing)
        caller_token.set(credentials.credentials)
        request.state.principal = principal
        return principal

    def check_metrics(self, request: Request) -> None:
        """/metrics is open unless a Prometheus bearer token is configured."""
        expected = self.settings.metrics_token
        if expected is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected.get_secret_value()}".encode()):
            raise Unauthenticated("/metrics needs the Prometheus bearer token")
