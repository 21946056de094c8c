from datetime import UTC, datetime, timedelta

from services.webhooks.domain import deliveries as queues
from services.webhooks.domain.deliveries import Attempt, DeliveryStatus, LeadDeliveries, Verdict
from services.webhooks.domain.retries import RetryPolicy

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
POLICY = RetryPolicy(attempts=3, first_delay_seconds=10, factor=2, jitter=0)


def queued(
    entry: LeadDeliveries,
    event_id: str,
    *,
    sub: str = "s1",
    at: datetime = T0,
    event_type: str = "deal.closed",
    **kw: object,
) -> LeadDeliveries:
    changed = queues.enqueue(
        entry,
        sub,
        event_id=event_id,
        event_type=event_type,
        event_time=at,
        body="{}",
        now=T0,
        **kw,  # type: ignore[arg-type]
    )
    assert changed is not None
    return changed


def attempt(number: int, status: int | None, at: datetime = T0) -> Attempt:
    return Attempt(number=number, at=at, status_code=status, error=None if status else "refused")


def test_an_event_is_queued_once_however_often_it_is_recorded() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "e1")
    assert (
        queues.enqueue(entry, "s1", event_id="e1", event_type="deal.closed", event_time=T0, body="{}", now=T0)
        is None
    )
    delivered, _ = queues.record_attempt(entry, "s1", "e1", attempt(1, 200), POLICY, 0)
    # Delivered: recording it again queues nothing; a replay queues it again.
    assert (
        queues.enqueue(
            delivered, "s1", event_id="e1", event_type="deal.closed", event_time=T0, body="{}", now=T0
        )
        is None
    )
    replayed = queued(delivered, "e1", replay=True)
    assert [d.status for d in replayed.queues["s1"]] == [DeliveryStatus.DELIVERED, DeliveryStatus.PENDING]
    assert replayed.queues["s1"][1].replay


def test_a_later_event_of_the_lead_waits_behind_an_earlier_one_other_subscriptions_do_not() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "deal", at=T0)
    entry = queued(entry, "order", at=T0 + timedelta(seconds=1))
    entry = queued(entry, "deal", sub="s2", at=T0)
    assert entry.head("s1").event_id == "deal"  # type: ignore[union-attr]
    failed, verdict = queues.record_attempt(entry, "s1", "deal", attempt(1, 500), POLICY, 0)
    assert verdict is Verdict.RETRY
    assert failed.head("s1").event_id == "deal"  # type: ignore[union-attr]
    assert failed.head("s1").next_attempt_at == T0 + timedelta(seconds=10)  # type: ignore[union-attr]
    assert failed.heads()["s2"].event_id == "deal"
    assert failed.next_due() == T0  # s2's head is due now
    done, _ = queues.record_attempt(failed, "s1", "deal", attempt(2, 204), POLICY, 0)
    assert done.head("s1").event_id == "order"  # type: ignore[union-attr]


def test_events_recorded_out_of_order_are_sent_in_event_time() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "order", at=T0 + timedelta(seconds=5))
    entry = queued(entry, "deal", at=T0)
    assert [d.event_id for d in entry.queues["s1"]] == ["deal", "order"]


def test_an_order_recorded_before_its_deal_of_the_same_instant_is_sent_after_it() -> None:
    # order.created carries its deal's close time: the lifecycle breaks the tie.
    entry = queued(LeadDeliveries(lead_id="l1"), "order", event_type="order.created")
    entry = queued(entry, "deal", event_type="deal.closed")
    assert [d.event_id for d in entry.queues["s1"]] == ["deal", "order"]


def test_an_earlier_event_goes_before_a_later_one_already_tried_while_the_receiver_was_down() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "order", event_type="order.created")
    entry, verdict = queues.record_attempt(entry, "s1", "order", attempt(1, None), POLICY, 0)
    assert verdict is Verdict.RETRY
    entry = queued(entry, "deal", event_type="deal.closed")
    assert entry.head("s1").event_id == "deal"  # type: ignore[union-attr]
    assert [d.event_id for d in entry.queues["s1"]] == ["deal", "order"]


def test_an_event_recorded_after_a_later_one_was_delivered_still_goes_out() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "order", event_type="order.created")
    entry, _ = queues.record_attempt(entry, "s1", "order", attempt(1, 200), POLICY, 0)
    entry = queued(entry, "deal", event_type="deal.closed")
    assert entry.head("s1").event_id == "deal"  # type: ignore[union-attr]


def test_retries_follow_the_schedule_then_the_delivery_is_dead() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "e1")
    entry, first = queues.record_attempt(entry, "s1", "e1", attempt(1, None), POLICY, 0)
    entry, second = queues.record_attempt(
        entry, "s1", "e1", attempt(2, 503, T0 + timedelta(seconds=10)), POLICY, 0
    )
    assert (first, second) == (Verdict.RETRY, Verdict.RETRY)
    assert entry.head("s1").next_attempt_at == T0 + timedelta(seconds=30)  # type: ignore[union-attr]
    entry, last = queues.record_attempt(entry, "s1", "e1", attempt(3, 500), POLICY, 0)
    assert last is Verdict.DEAD
    [dead] = entry.queues["s1"]
    assert dead.status is DeliveryStatus.DEAD
    assert dead.attempts == 3
    assert dead.last_status_code == 500
    assert dead.body is None  # the log keeps no copies of events
    assert entry.next_due() is None


def test_an_outcome_applied_twice_or_out_of_turn_changes_nothing() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "e1")
    once, _ = queues.record_attempt(entry, "s1", "e1", attempt(1, 500), POLICY, 0)
    again, verdict = queues.record_attempt(once, "s1", "e1", attempt(1, 500), POLICY, 0)
    assert verdict is Verdict.STALE
    assert again == once
    assert queues.record_attempt(once, "s1", "e1", attempt(3, 200), POLICY, 0)[1] is Verdict.STALE


def test_410_settles_the_delivery_and_says_gone() -> None:
    entry = queued(LeadDeliveries(lead_id="l1"), "e1")
    entry, verdict = queues.record_attempt(entry, "s1", "e1", attempt(1, 410), POLICY, 0)
    assert verdict is Verdict.GONE
    assert entry.queues["s1"][0].status is DeliveryStatus.CANCELLED


def test_cancel_settles_what_is_pending_and_the_log_is_bounded() -> None:
    entry = LeadDeliveries(lead_id="l1")
    for n in range(queues.LOG_LIMIT + 5):
        entry = queued(entry, f"e{n}", at=T0 + timedelta(seconds=n))
    cancelled = queues.cancel(entry, "s1", T0, "subscription deleted")
    assert all(d.status is DeliveryStatus.CANCELLED for d in cancelled.queues["s1"])
    assert len(cancelled.queues["s1"]) == queues.LOG_LIMIT
    assert cancelled.queues["s1"][-1].event_id == f"e{queues.LOG_LIMIT + 4}"  # the oldest went first
