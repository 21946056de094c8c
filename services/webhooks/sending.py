"""One signed HTTP request to a subscriber: the target checked, the body signed per
Standard Webhooks, the answer (or the failure) returned as an Attempt."""

import asyncio
import json
import socket
import time
from datetime import UTC, datetime
from uuid import uuid4

import httpx
from standardwebhooks import Webhook

from schemas.envelope import CONTENT_TYPE
from services.webhooks.domain.deliveries import Attempt
from services.webhooks.domain.subscriptions import Subscription
from services.webhooks.domain.targets import TargetRefused, check_addresses, parse_target
from services.webhooks.settings import WebhooksSettings

USER_AGENT = "Leadflow-Webhooks/1"
VERIFICATION_TYPE = "leadflow.webhook.verification"


def now() -> datetime:
    return datetime.now(UTC)


def signed_headers(secrets: list[str], message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and one `v1,` signature per secret, space-separated
    (during a rotation's overlap a receiver may hold either secret)."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
    }


async def check_target(url: str, settings: WebhooksSettings) -> None:
    """Raise TargetRefused unless `url` is allowed and every address it resolves to is."""
    host, port = parse_target(url, allow_http=settings.allow_http_targets)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as unknown:
        raise TargetRefused(f"{host} does not resolve: {unknown.strerror}", field="url") from unknown
    check_addresses(
        host, sorted({str(info[4][0]) for info in found}), allow_private=settings.allow_private_targets
    )


async def send(
    client: httpx.AsyncClient,
    settings: WebhooksSettings,
    *,
    url: str,
    secrets: list[str],
    message_id: str,
    body: bytes,
    number: int,
) -> Attempt:
    """POST `body` to `url`, signed; what came back, or why nothing did. Redirects are
    not followed: the target is the URL that was checked and verified."""
    at = now()
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        # Checked on every attempt, not only when subscribing: a name may resolve
        # elsewhere later (DNS rebinding).
        await check_target(url, settings)
        answer = await client.post(
            url,
            content=body,
            headers=signed_headers(secrets, message_id, at, body),
            timeout=settings.attempt_timeout_seconds,
        )
        status = answer.status_code
    except TargetRefused as refused:
        error = refused.reason
    except httpx.TimeoutException:
        error = f"no answer within {settings.attempt_timeout_seconds:g}s"
    except httpx.HTTPError as failed:
        error = f"{type(failed).__name__}: {failed}" if str(failed) else type(failed).__name__
    return Attempt(
        number=number,
        at=at,
        status_code=status,
        error=error and error[:500],
        seconds=time.monotonic() - started,
    )


def verification_event(subscription: Subscription) -> tuple[str, bytes]:
    """The signed test event a new URL must accept: a CloudEvent of its own type."""
    event_id = str(uuid4())
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/leadflow/webhooks",
        "type": VERIFICATION_TYPE,
        "time": datetime.now(UTC).isoformat(),
        "subject": subscription.subscription_id,
        "datacontenttype": "application/json",
        "data": {
            "subscription_id": subscription.subscription_id,
            "url": subscription.url,
            "event_types": list(subscription.event_types),
        },
    }
    return event_id, json.dumps(body).encode()
