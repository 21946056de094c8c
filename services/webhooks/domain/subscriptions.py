"""A Subscription: a URL that receives some event types, signed with its secrets.

Its status says what happens to events that match it:
- active: recorded and delivered;
- failing: a delivery went dead (every attempt failed); still delivered, and back
  to active at the next delivery that succeeds;
- paused: recorded but held (by hand, or after too many dead deliveries); resuming
  sends what was held, in order;
- disabled: the receiver answered 410 Gone; nothing is recorded or sent any more.
"""

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas import topics
from schemas.events import Outcome
from services.runtime.errors import Conflict, Unprocessable

EventType = Literal[
    "lead.created", "lead.qualified", "deal.updated", "deal.closed", "order.created", "order.updated"
]
# The events a subscription may ask for: every public event.
EVENT_TYPES: tuple[str, ...] = (
    topics.LEAD_CREATED,
    topics.LEAD_QUALIFIED,
    topics.DEAL_UPDATED,
    topics.DEAL_CLOSED,
    topics.ORDER_CREATED,
    topics.ORDER_UPDATED,
)

# Which event types carry each filterable field in their data: a filter on a field
# that a subscribed type does not carry could never match it, so it is refused.
FILTER_FIELDS: dict[str, frozenset[str]] = {
    "campaign_id": frozenset(
        {topics.LEAD_CREATED, topics.LEAD_QUALIFIED, topics.DEAL_UPDATED, topics.DEAL_CLOSED}
    ),
    "outcome": frozenset({topics.DEAL_CLOSED}),
}

SECRET_PREFIX = "whsec_"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    FAILING = "failing"
    DISABLED = "disabled"


class Filter(BaseModel):
    """Every field set must equal the event data's field of that name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: str | None = Field(default=None, min_length=1, max_length=200)
    outcome: Outcome | None = None

    def fields(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.model_dump(exclude_none=True, mode="json").items()}


class Secret(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str
    created_at: AwareDatetime
    # Set on the old secret when a new one replaces it: both sign until then.
    expires_at: AwareDatetime | None = None


class Subscription(BaseModel):
    model_config = ConfigDict(frozen=True)

    subscription_id: str
    url: str
    event_types: list[EventType]
    filter: Filter = Filter()
    description: str = ""
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    status_reason: str | None = None
    # Newest first; expired ones are dropped at the next rotation.
    secrets: list[Secret]
    # Dead deliveries since the last one that succeeded (auto-pause counts these).
    dead_deliveries: int = 0
    created_at: AwareDatetime
    updated_at: AwareDatetime
    created_by: str | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery made `now`: the newest, and an older one
        until its overlap period ends."""
        return [s.value for s in self.secrets if s.expires_at is None or s.expires_at > now]

    def matches(self, event_type: str, data: dict[str, Any]) -> bool:
        if event_type not in self.event_types:
            return False
        return all(str(data.get(name)) == value for name, value in self.filter.fields().items())

    @property
    def records(self) -> bool:
        """Whether events that match are recorded for delivery (held while paused)."""
        return self.status is not SubscriptionStatus.DISABLED

    @property
    def sends(self) -> bool:
        return self.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.FAILING)

    def view(self, now: datetime) -> dict[str, Any]:
        """What the API shows: everything but the secrets themselves."""
        body = self.model_dump(mode="json", exclude={"secrets"})
        overlap = [s.expires_at for s in self.secrets if s.expires_at is not None and s.expires_at > now]
        body["secret_overlap_until"] = max(overlap).isoformat() if overlap else None
        return body


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """A secret the subscriber chose: a Standard Webhooks secret of 24 to 64 random bytes.
    Chosen beforehand, the receiver can verify even the test event sent before the 201."""
    try:
        if not secret.startswith(SECRET_PREFIX):
            raise ValueError(f"it must start with {SECRET_PREFIX}")
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError as bad:
        raise Unprocessable(f"not a Standard Webhooks secret: {bad}", field="secret") from bad
    if not 24 <= len(key) <= 64:
        raise Unprocessable(f"the secret must be 24 to 64 bytes, not {len(key)}", field="secret")
    return secret


def check_types_and_filter(event_types: Sequence[str], flt: Filter) -> None:
    if not event_types:
        raise Unprocessable("subscribe to at least one event type", field="event_types")
    if len(set(event_types)) != len(event_types):
        raise Unprocessable("an event type is listed twice", field="event_types")
    for name in flt.fields():
        missing = [t for t in event_types if t not in FILTER_FIELDS[name]]
        if missing:
            raise Unprocessable(
                f"filter on {name} cannot apply to {', '.join(missing)}: those events do not carry it",
                field="filter",
            )


def new_subscription(
    subscription_id: str,
    *,
    url: str,
    event_types: list[EventType],
    flt: Filter,
    description: str,
    secret: str,
    now: datetime,
    by: str | None,
) -> Subscription:
    check_types_and_filter(list(event_types), flt)
    return Subscription(
        subscription_id=subscription_id,
        url=url,
        event_types=event_types,
        filter=flt,
        description=description,
        secrets=[Secret(value=secret, created_at=now)],
        created_at=now,
        updated_at=now,
        created_by=by,
    )


def change(
    subscription: Subscription,
    now: datetime,
    *,
    paused: bool | None = None,
    event_types: list[EventType] | None = None,
    flt: Filter | None = None,
    description: str | None = None,
) -> Subscription:
    """Pause, resume or change what a subscription receives. A disabled one stays so."""
    if subscription.status is SubscriptionStatus.DISABLED:
        raise Conflict(
            f"subscription {subscription.subscription_id} is disabled ({subscription.status_reason}); "
            "delete it and subscribe again",
            field="paused",
        )
    types = list(subscription.event_types if event_types is None else event_types)
    new_filter = subscription.filter if flt is None else flt
    check_types_and_filter(types, new_filter)
    update: dict[str, Any] = {"event_types": types, "filter": new_filter, "updated_at": now}
    if description is not None:
        update["description"] = description
    if paused is True:
        update |= {"status": SubscriptionStatus.PAUSED, "status_reason": "paused by request"}
    elif paused is False and subscription.status is SubscriptionStatus.PAUSED:
        # Resumed: the dead deliveries that paused it are forgiven.
        update |= {"status": SubscriptionStatus.ACTIVE, "status_reason": None, "dead_deliveries": 0}
    return subscription.model_copy(update=update)


def rotate(subscription: Subscription, secret: str, now: datetime, overlap: timedelta) -> Subscription:
    """Sign with `secret` from now on; the current secret also signs for `overlap`."""
    if subscription.status is SubscriptionStatus.DISABLED:
        raise Conflict(f"subscription {subscription.subscription_id} is disabled")
    kept = [
        s if s.expires_at is not None else s.model_copy(update={"expires_at": now + overlap})
        for s in subscription.secrets
        if (s.expires_at is None or s.expires_at > now) and overlap > timedelta(0)
    ]
    return subscription.model_copy(
        update={"secrets": [Secret(value=secret, created_at=now), *kept], "updated_at": now}
    )


def delivery_dead(subscription: Subscription, now: datetime, *, pause_after: int) -> Subscription:
    """A delivery to it ran out of attempts: failing, or paused after `pause_after` in a row."""
    if subscription.status is SubscriptionStatus.DISABLED:
        return subscription
    dead = subscription.dead_deliveries + 1
    update: dict[str, Any] = {"dead_deliveries": dead, "updated_at": now}
    if subscription.status is not SubscriptionStatus.PAUSED:
        if dead >= pause_after:
            update |= {
                "status": SubscriptionStatus.PAUSED,
                "status_reason": f"paused after {dead} dead deliveries in a row",
            }
        else:
            update |= {"status": SubscriptionStatus.FAILING, "status_reason": f"{dead} dead deliveries"}
    return subscription.model_copy(update=update)


def delivery_succeeded(subscription: Subscription, now: datetime) -> Subscription:
    if subscription.status is SubscriptionStatus.FAILING:
        return subscription.model_copy(
            update={
                "status": SubscriptionStatus.ACTIVE,
                "status_reason": None,
                "dead_deliveries": 0,
                "updated_at": now,
            }
        )
    if subscription.dead_deliveries and subscription.status is SubscriptionStatus.ACTIVE:
        return subscription.model_copy(update={"dead_deliveries": 0, "updated_at": now})
    return subscription


def gone(subscription: Subscription, now: datetime) -> Subscription:
    """The receiver answered 410 Gone: it wants no more deliveries, ever."""
    return subscription.model_copy(
        update={
            "status": SubscriptionStatus.DISABLED,
            "status_reason": "the receiver answered 410 Gone",
            "updated_at": now,
        }
    )
