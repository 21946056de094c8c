"""Who may call Leadflow's APIs: the OAuth2 scopes each operation needs, and a
local development issuer that stands in for an OIDC provider on a laptop.

Every API route takes an OAuth2 bearer token, a JWT signed by the deployment's
issuer (its JWKS URL, or a public key file) and carrying the scopes the route
names. On a laptop there is no issuer: `leadflow token` makes a key pair under
`.cache/issuer/` once and signs tokens with it, and the services started by
`make up` and the tests trust its public key.
"""

import fcntl
import os
import time
import uuid
from collections.abc import Generator, Iterable
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# Scope -> what it allows; the API's routes each name the one they need.
SCOPES: dict[str, str] = {
    "campaigns:read": "Read campaigns and their performance",
    "campaigns:write": "Create campaigns",
    "leads:read": "Read leads",
    "leads:write": "Capture leads and record their activities",
    "deals:read": "Read deals, the catalog, reps and desks",
    "deals:write": "Move deals through their stages, record objections and contacts, close them",
    "orders:read": "Read orders",
    "orders:write": "Move orders through their lifecycle",
    "webhooks:read": "Read webhook subscriptions and their delivery log",
    "webhooks:write": "Subscribe URLs to events, change, pause, delete them, rotate secrets, replay",
}

LOCAL_ISSUER = "https://issuer.leadflow.localhost"
LOCAL_AUDIENCE = "leadflow"
LOCAL_KEY_ID = "leadflow-local-1"
LOCAL_ALGORITHM = "RS256"
DEFAULT_ISSUER_DIR = Path(".cache/issuer")


class LocalIssuer:
    """A key pair in a folder and tokens signed with it, for local runs and tests only."""

    def __init__(self, folder: Path = DEFAULT_ISSUER_DIR) -> None:
        self.folder = folder
        self.private_key_file = folder / "private.pem"
        self.public_key_file = folder / "public.pem"

    def ensure_keys(self) -> "LocalIssuer":
        """Make the key pair on first use; later calls (and processes) reuse it."""
        if self.private_key_file.exists() and self.public_key_file.exists():
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        # One maker at a time: two processes starting side by side must not each
        # write half of a pair.
        with (self.folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (self.private_key_file.exists() and self.public_key_file.exists()):
                self._make_keys()
        return self

    def _make_keys(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # The private key is never readable by others, not even for a moment; the
        # public one is readable by all: compose mounts it into containers of another uid.
        for target, content, mode in (
            (self.private_key_file, private, 0o600),
            (self.public_key_file, public, 0o644),
        ):
            partial = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(descriptor, "wb") as out:
                out.write(content)
            os.chmod(partial, mode)  # as asked, whatever the umask
            partial.replace(target)

    def token(
        self,
        *,
        subject: str = "local-developer",
        scopes: Iterable[str] = SCOPES,
        lifetime_seconds: int = 12 * 3600,
        audience: str = LOCAL_AUDIENCE,
        issuer: str = LOCAL_ISSUER,
    ) -> str:
        self.ensure_keys()
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_seconds,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
        }
        key = self.private_key_file.read_bytes()
        return jwt.encode(claims, key, algorithm=LOCAL_ALGORITHM, headers={"kid": LOCAL_KEY_ID})

    def service_env(self) -> dict[str, str]:
        """The settings that make a service trust this issuer's tokens."""
        self.ensure_keys()
        return {
            "LEADFLOW_AUTH_ISSUER": LOCAL_ISSUER,
            "LEADFLOW_AUTH_AUDIENCE": LOCAL_AUDIENCE,
            "LEADFLOW_AUTH_PUBLIC_KEY_FILE": str(self.public_key_file.resolve()),
        }

    def auth(self, **token_args: object) -> "BearerToken":
        """httpx authentication with a token of this issuer, minted again before it expires."""
        return BearerToken(self, token_args)


class BearerToken(httpx.Auth):
    def __init__(self, issuer: LocalIssuer, token_args: dict[str, object]) -> None:
        self.issuer = issuer
        self.token_args = token_args
        self._token = ""
        self._renew_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if time.monotonic() >= self._renew_at:
            self._token = self.issuer.token(**self.token_args)  # type: ignore[arg-type]
            self._renew_at = time.monotonic() + 3600
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request
