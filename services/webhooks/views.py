"""Webhooks' HTTP API: subscriptions, their delivery log, secret rotation and replay."""

import asyncio
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Depends, Request, Response

from services.runtime.auth import subject_of
from services.runtime.cluster import Unavailable
from services.runtime.errors import NotFound, Unprocessable
from services.runtime.pages import Page, PageQuery, page_query
from services.runtime.refusals import documented
from services.runtime.tables import MAX_VALUE_BYTES
from services.webhooks import replay, sending
from services.webhooks.app import deliveries, runtime, settings, subscriptions
from services.webhooks.commands import (
    ChangeSubscription,
    CreateSubscription,
    DeleteSubscription,
    RotateSecret,
)
from services.webhooks.domain import subscriptions as subs
from services.webhooks.domain.deliveries import DeliveryStatus, LeadDeliveries
from services.webhooks.domain.subscriptions import Subscription
from services.webhooks.models import ChangeRequest, ReplayRequest, RotateRequest, SubscribeRequest
from services.webhooks.topics import commands

refusals = documented(
    {
        404: "No such subscription",
        409: "The subscription is disabled",
        422: "A refused URL, a URL that did not accept the signed test event, or a filter that cannot apply",
    }
)

router = APIRouter(tags=["webhooks"], responses=refusals(401, 403, 503))
cluster = runtime.cluster


def _local_id() -> str:
    """A new subscription id whose partition this worker owns, so the command that
    stores it is applied here and the request need not be sent elsewhere."""
    for _ in range(64):
        candidate = f"sub_{uuid4().hex}"
        if cluster.owns(subscriptions, candidate):
            return candidate
    raise Unavailable("this worker holds no partition yet; retry")


async def _owned(subscription_id: str, request: Request) -> Subscription:
    await cluster.ensure_local(request, subscriptions, subscription_id)
    found = subscriptions.get(subscription_id)
    if found is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    return found


@router.post(
    "/subscriptions",
    status_code=201,
    responses=refusals(400, 422),
    dependencies=runtime.requires("webhooks:write"),
)
async def subscribe(body: SubscribeRequest, request: Request) -> dict[str, Any]:
    """Subscribe a URL. It first gets a signed test event (type `leadflow.webhook.verification`)
    and must answer 2xx. The answer holds the signing `secret`: shown this once. Pass your own
    `secret` to verify the test event as well (otherwise it is signed with one you do not know yet)."""
    secret = subs.new_secret() if body.secret is None else subs.check_secret(body.secret)
    subscription = subs.new_subscription(
        _local_id(),
        url=body.url,
        event_types=body.event_types,
        flt=body.filter,
        description=body.description,
        secret=secret,
        now=sending.now(),
        by=subject_of(request),
    )
    await sending.check_target(subscription.url, settings)
    message_id, test_event = sending.verification_event(subscription)
    answer = await sending.send(
        cluster.client,
        settings,
        url=subscription.url,
        secrets=[secret],
        message_id=message_id,
        body=test_event,
        number=1,
    )
    if not answer.succeeded:
        got = f"answered {answer.status_code}" if answer.status_code is not None else answer.error
        raise Unprocessable(f"the URL did not accept the signed test event: {got}", field="url")
    stored: Subscription = await commands.ask(
        CreateSubscription(subscription_id=subscription.subscription_id, subscription=subscription)
    )
    return {**stored.view(sending.now()), "secret": secret}


@router.get(
    "/subscriptions", response_model=Page[dict[str, Any]], dependencies=runtime.requires("webhooks:read")
)
async def list_subscriptions(
    request: Request, page: Annotated[PageQuery, Depends(page_query)]
) -> Page[dict[str, Any]]:
    """Subscriptions in id order, a page at a time (secrets are never shown)."""
    at = sending.now()
    return await cluster.page(request, subscriptions, page, lambda s: s.view(at), key_field="subscription_id")


@router.get(
    "/subscriptions/{subscription_id}",
    responses=refusals(404),
    dependencies=runtime.requires("webhooks:read"),
)
async def get_subscription(subscription_id: str, request: Request) -> dict[str, Any]:
    return (await _owned(subscription_id, request)).view(sending.now())


@router.patch(
    "/subscriptions/{subscription_id}",
    responses=refusals(400, 404, 409, 422),
    dependencies=runtime.requires("webhooks:write"),
)
async def change_subscription(subscription_id: str, body: ChangeRequest, request: Request) -> dict[str, Any]:
    """Pause (`paused: true`: events are kept and sent on resume), resume, or change the
    event types, filter or description."""
    await _owned(subscription_id, request)
    changed: Subscription = await commands.ask(
        ChangeSubscription(
            subscription_id=subscription_id,
            paused=body.paused,
            event_types=body.event_types,
            filter=body.filter,
            description=body.description,
        )
    )
    return changed.view(sending.now())


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    responses=refusals(404),
    dependencies=runtime.requires("webhooks:write"),
)
async def delete_subscription(subscription_id: str, request: Request) -> Response:
    """Delete it: nothing more is sent, deliveries still pending are cancelled."""
    await _owned(subscription_id, request)
    await commands.ask(DeleteSubscription(subscription_id=subscription_id))
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/rotate-secret",
    responses=refusals(400, 404, 409),
    dependencies=runtime.requires("webhooks:write"),
)
async def rotate_secret(
    subscription_id: str, request: Request, body: RotateRequest | None = None
) -> dict[str, Any]:
    """A new signing secret, shown this once. The old one signs too (a second signature
    in `webhook-signature`) for `overlap_seconds` (default: the service's setting)."""
    await _owned(subscription_id, request)
    secret = subs.new_secret()
    overlap = (
        settings.secret_overlap_seconds
        if body is None or body.overlap_seconds is None
        else body.overlap_seconds
    )
    rotated: Subscription = await commands.ask(
        RotateSecret(subscription_id=subscription_id, secret=secret, overlap_seconds=overlap)
    )
    return {**rotated.view(sending.now()), "secret": secret}


@router.get(
    "/subscriptions/{subscription_id}/deliveries",
    response_model=Page[dict[str, Any]],
    responses=refusals(404),
    dependencies=runtime.requires("webhooks:read"),
)
async def list_deliveries(
    subscription_id: str,
    request: Request,
    page: Annotated[PageQuery, Depends(page_query)],
    status: DeliveryStatus | None = None,
) -> Page[dict[str, Any]]:
    """The delivery log: per lead (in lead id order), its deliveries to this subscription
    in the order they are made, each with its status, attempts, the last response
    code or error and when; a page of leads at a time. Each worker answers for its leads."""
    if request.headers.get("x-leadflow-local") is None:
        await _owned(subscription_id, request)

    def item(entry: LeadDeliveries) -> dict[str, Any] | None:
        queue = [
            d.model_dump(mode="json", exclude={"body"})
            for d in entry.queues.get(subscription_id, [])
            if status is None or d.status is status
        ]
        return {"lead_id": entry.lead_id, "deliveries": queue} if queue else None

    return await cluster.page(request, deliveries, page, item, key_field="lead_id")


@router.post(
    "/subscriptions/{subscription_id}/replay",
    status_code=202,
    responses=refusals(400, 404, 422),
    dependencies=runtime.requires("webhooks:write"),
)
async def replay_events(subscription_id: str, body: ReplayRequest, request: Request) -> dict[str, Any]:
    """Send again the events still on the topics that match the subscription: those from
    `since` on, or the one `event_id`. Delivered ones are sent again (same `webhook-id`)."""
    subscription = await _owned(subscription_id, request)
    found = await replay.find(
        settings,
        subscription,
        since=body.since,
        event_id=None if body.event_id is None else str(body.event_id),
    )
    too_large = [r for r in found if not replay.storable(r)]
    if body.event_id is not None and too_large:
        raise Unprocessable(
            f"event {body.event_id} is too large to queue for delivery: a delivery holds the "
            f"event's body, at most {MAX_VALUE_BYTES:,} bytes; it was dead-lettered when it came",
            field="event_id",
        )
    queued = [r for r in found if replay.storable(r)]
    sent = [
        await commands.topic.send(key=requeue.key.encode(), value=requeue.model_dump_json().encode())
        for requeue in queued
    ]
    # On the broker before the answer: a 202 means they will be sent.
    await asyncio.gather(*sent)
    return {
        "queued": len(queued),
        "event_ids": [r.event_id for r in queued][:1000],
        "too_large": [r.event_id for r in too_large][:1000],
    }


runtime.api.include_router(router)
