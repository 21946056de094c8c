"""Webhooks' commands: HTTP writes and delivery outcomes, applied by the worker owning their key."""

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from services.runtime.commands import Command, LeadCommand
from services.webhooks.domain.deliveries import Attempt
from services.webhooks.domain.subscriptions import EventType, Filter, Subscription


class SubscriptionCommand(Command):
    subscription_id: str

    @property
    def key(self) -> str:
        return self.subscription_id


class CreateSubscription(SubscriptionCommand):
    kind: Literal["create_subscription"] = "create_subscription"
    subscription: Subscription


class ChangeSubscription(SubscriptionCommand):
    kind: Literal["change_subscription"] = "change_subscription"
    paused: bool | None = None
    event_types: list[EventType] | None = None
    filter: Filter | None = None
    description: str | None = None


class DeleteSubscription(SubscriptionCommand):
    kind: Literal["delete_subscription"] = "delete_subscription"


class RotateSecret(SubscriptionCommand):
    kind: Literal["rotate_secret"] = "rotate_secret"
    secret: str
    overlap_seconds: float


class NoteDelivery(SubscriptionCommand):
    """What a settled delivery tells its subscription (failing, paused, disabled, fine)."""

    kind: Literal["note_delivery"] = "note_delivery"
    verdict: Literal["delivered", "dead", "gone"]


class RecordAttempt(LeadCommand):
    kind: Literal["record_attempt"] = "record_attempt"
    subscription_id: str
    event_id: str
    attempt: Attempt


class Requeue(LeadCommand):
    """Send an event again (replay), whether or not it was delivered before."""

    kind: Literal["requeue"] = "requeue"
    subscription_id: str
    event_id: str
    event_type: str
    event_time: AwareDatetime
    body: str


class CancelDeliveries(LeadCommand):
    kind: Literal["cancel_deliveries"] = "cancel_deliveries"
    subscription_id: str
    reason: str


WebhooksCommand = Annotated[
    CreateSubscription
    | ChangeSubscription
    | DeleteSubscription
    | RotateSecret
    | NoteDelivery
    | RecordAttempt
    | Requeue
    | CancelDeliveries,
    Field(discriminator="kind"),
]
