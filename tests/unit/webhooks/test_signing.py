import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from services.webhooks import sending
from services.webhooks.domain import subscriptions as subs
from services.webhooks.domain.subscriptions import Filter


def test_a_delivery_verifies_with_each_secret_that_signs_it() -> None:
    old, new = subs.new_secret(), subs.new_secret()
    body = b'{"id":"e-1","type":"deal.closed"}'
    headers = sending.signed_headers([new, old], "e-1", datetime.now(UTC), body)
    assert headers["webhook-id"] == "e-1"
    assert headers["content-type"] == "application/cloudevents+json"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(subs.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)


def test_the_verification_event_is_a_cloudevent_about_the_subscription() -> None:
    subscription = subs.new_subscription(
        "sub_1",
        url="https://hooks.example/in",
        event_types=["deal.closed"],
        flt=Filter(),
        description="",
        secret=subs.new_secret(),
        now=datetime.now(UTC),
        by=None,
    )
    event_id, body = sending.verification_event(subscription)
    event = json.loads(body)
    assert event["id"] == event_id
    assert event["type"] == "leadflow.webhook.verification"
    assert event["specversion"] == "1.0"
    assert event["data"] == {
        "subscription_id": "sub_1",
        "url": "https://hooks.example/in",
        "event_types": ["deal.closed"],
    }
