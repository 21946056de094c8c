import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from services.runtime.errors import Conflict, Unprocessable
from services.webhooks.domain import subscriptions as subs
from services.webhooks.domain.subscriptions import Filter, Subscription, SubscriptionStatus

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def subscription(**overrides: object) -> Subscription:
    args: dict[str, object] = {
        "url": "https://hooks.example/in",
        "event_types": ["deal.closed", "order.created"],
        "flt": Filter(),
        "description": "billing",
        "secret": subs.new_secret(),
        "now": NOW,
        "by": "tests",
    }
    return subs.new_subscription("sub_1", **(args | overrides))  # type: ignore[arg-type]


def test_a_new_secret_is_a_standard_webhooks_secret() -> None:
    secret = subs.new_secret()
    assert secret.startswith("whsec_")
    Webhook(secret)  # decodes
    assert subs.new_secret() != secret


def test_matching_by_type_and_filter() -> None:
    won_only = subscription(event_types=["deal.closed"], flt=Filter(outcome="won", campaign_id="c-1"))
    assert won_only.matches("deal.closed", {"outcome": "won", "campaign_id": "c-1"})
    assert not won_only.matches("deal.closed", {"outcome": "lost", "campaign_id": "c-1"})
    assert not won_only.matches("deal.closed", {"outcome": "won", "campaign_id": None})
    assert not won_only.matches("order.created", {"outcome": "won", "campaign_id": "c-1"})
    everything = subscription()
    assert everything.matches("order.created", {})


@pytest.mark.parametrize(
    ("types", "flt", "problem"),
    [
        ([], Filter(), "at least one"),
        (["deal.closed", "deal.closed"], Filter(), "twice"),
        (["deal.closed", "order.created"], Filter(outcome="won"), "order.created"),
        (["order.created"], Filter(campaign_id="c-1"), "order.created"),
        (["lead.created"], Filter(outcome="lost"), "lead.created"),
        (["order.updated"], Filter(campaign_id="c-1"), "order.updated"),
        (["deal.updated"], Filter(outcome="won"), "deal.updated"),
    ],
)
def test_types_and_filters_that_cannot_work_are_refused(types: list[str], flt: Filter, problem: str) -> None:
    with pytest.raises(Unprocessable, match=problem):
        subscription(event_types=types, flt=flt)


def test_stage_moves_and_order_updates_can_be_subscribed_to_by_campaign() -> None:
    moves = subscription(event_types=["deal.updated", "order.updated"])
    assert moves.matches("deal.updated", {"campaign_id": "c-1"})
    assert moves.matches("order.updated", {})
    by_campaign = subscription(event_types=["deal.updated"], flt=Filter(campaign_id="c-1"))
    assert by_campaign.matches("deal.updated", {"campaign_id": "c-1"})
    assert not by_campaign.matches("deal.updated", {"campaign_id": "c-2"})


def test_pause_and_resume() -> None:
    paused = subs.change(subscription(), NOW, paused=True)
    assert paused.status is SubscriptionStatus.PAUSED
    assert not paused.sends
    assert paused.records  # held, not dropped
    resumed = subs.change(paused, NOW, paused=False)
    assert resumed.status is SubscriptionStatus.ACTIVE
    assert resumed.sends


def test_dead_deliveries_flag_failing_then_pause_and_a_success_clears_them() -> None:
    one = subs.delivery_dead(subscription(), NOW, pause_after=3)
    assert one.status is SubscriptionStatus.FAILING
    assert one.sends
    assert subs.delivery_succeeded(one, NOW).status is SubscriptionStatus.ACTIVE
    three = subs.delivery_dead(subs.delivery_dead(one, NOW, pause_after=3), NOW, pause_after=3)
    assert three.status is SubscriptionStatus.PAUSED
    assert three.status_reason == "paused after 3 dead deliveries in a row"
    assert subs.change(three, NOW, paused=False).dead_deliveries == 0


def test_gone_disables_for_good() -> None:
    gone = subs.gone(subscription(), NOW)
    assert gone.status is SubscriptionStatus.DISABLED
    assert not gone.records
    assert not gone.sends
    with pytest.raises(Conflict):
        subs.change(gone, NOW, paused=False)
    assert subs.delivery_dead(gone, NOW, pause_after=1).status is SubscriptionStatus.DISABLED


def test_rotation_signs_with_both_secrets_until_the_overlap_ends() -> None:
    first = subscription()
    old = first.secrets[0].value
    new = subs.new_secret()
    rotated = subs.rotate(first, new, NOW, timedelta(hours=1))
    assert rotated.signing_secrets(NOW) == [new, old]
    assert rotated.signing_secrets(NOW + timedelta(hours=1, seconds=1)) == [new]
    assert rotated.view(NOW)["secret_overlap_until"] == (NOW + timedelta(hours=1)).isoformat()
    assert "secrets" not in rotated.view(NOW)
    # Rotating again keeps only secrets still signing; without overlap only the new one.
    again = subs.rotate(rotated, "whsec_AAAA", NOW + timedelta(hours=2), timedelta(0))
    assert again.signing_secrets(NOW + timedelta(hours=2)) == ["whsec_AAAA"]


def test_a_secret_the_subscriber_chose_must_be_a_strong_standard_webhooks_secret() -> None:
    mine = subs.new_secret()
    assert subs.check_secret(mine) == mine
    for bad, problem in (
        ("abc", "must start with whsec_"),
        ("whsec_not base64!", "not a Standard Webhooks secret"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes, not 5"),
    ):
        with pytest.raises(Unprocessable, match=problem):
            subs.check_secret(bad)
