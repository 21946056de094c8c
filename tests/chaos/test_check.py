"""The chaos check catches what it is there to catch; no broker needed."""

from collections import Counter
from dataclasses import replace

from schemas.topics import DEAL_CLOSED, LEAD_CREATED, LEAD_QUALIFIED, ORDER_CREATED
from tests.chaos.check import LOST, WON, WON_DEAL_AMOUNT, Event, Observed, Truth, check, check_webhooks


def healthy_run() -> tuple[Truth, Observed]:
    """Three leads: two won, one lost, and everything the system should show for them."""
    truth = Truth(captured={"a", "b", "c"}, closed={"a": WON, "b": WON, "c": LOST}, campaign_id="camp")
    events = []
    for offset, lead in enumerate(sorted(truth.captured)):
        topics = [LEAD_CREATED, LEAD_QUALIFIED, DEAL_CLOSED]
        topics += [ORDER_CREATED] if truth.closed[lead] == WON else []
        events += [Event(t, 0, offset, lead, f"{t}-{lead}") for t in topics]
    observed = Observed(
        events=events,
        dead_letters={"deal.closed.dlq": 0},
        lead_status=dict(truth.closed),
        deal_stage=dict(truth.closed),
        orders={"a", "b"},
        performance={
            "leads": 3,
            "qualified": 3,
            "deals_won": 2,
            "deals_lost": 1,
            "revenue": [{"amount": str(WON_DEAL_AMOUNT * 2), "currency": "EUR"}],
        },
    )
    return truth, observed


def test_a_run_where_everything_arrived_passes() -> None:
    verdict = check(*healthy_run())
    assert verdict.ok, verdict
    assert verdict.line(faults=5) == (
        "chaos: acked_leads=3 lost_leads=0 dup_leads=0 acked_closes=3 "
        "lost_orders=0 dup_orders=0 redelivered=0 dlq=0 faults=5"
    )


def test_a_lost_order_is_caught() -> None:
    truth, observed = healthy_run()
    observed.events = [e for e in observed.events if (e.topic, e.lead_id) != (ORDER_CREATED, "b")]
    observed.orders.discard("b")
    verdict = check(truth, observed)
    assert verdict.lost_orders == 1
    assert not verdict.ok
    assert any("b" in example for examples in verdict.findings.values() for example in examples)


def test_an_order_missing_only_from_the_api_is_lost_too() -> None:
    truth, observed = healthy_run()
    observed.orders.discard("a")
    assert check(truth, observed).lost_orders == 1


def test_a_lost_lead_is_caught() -> None:
    truth, observed = healthy_run()
    observed.events = [e for e in observed.events if (e.topic, e.lead_id) != (LEAD_QUALIFIED, "c")]
    del observed.deal_stage["c"]
    verdict = check(truth, observed)
    assert verdict.lost_leads == 1
    assert not verdict.ok


def test_a_redelivered_copy_is_counted_but_passes() -> None:
    truth, observed = healthy_run()
    again = next(e for e in observed.events if e.topic == ORDER_CREATED)
    observed.events.append(replace(again, offset=99))
    verdict = check(truth, observed)
    assert verdict.redelivered == 1
    assert verdict.ok


def test_a_second_id_for_one_lead_is_a_duplicate() -> None:
    truth, observed = healthy_run()
    observed.events.append(Event(ORDER_CREATED, 0, 99, "a", "another-id"))
    observed.events.append(Event(LEAD_CREATED, 0, 99, "c", "another-id"))
    verdict = check(truth, observed)
    assert (verdict.dup_orders, verdict.dup_leads) == (1, 1)
    assert not verdict.ok


def test_a_dead_letter_fails_the_run() -> None:
    truth, observed = healthy_run()
    observed.dead_letters["deal.closed.dlq"] = 1
    verdict = check(truth, observed)
    assert verdict.dlq == 1
    assert not verdict.ok


def test_an_order_for_a_lost_deal_fails_the_run() -> None:
    truth, observed = healthy_run()
    observed.events.append(Event(ORDER_CREATED, 0, 99, "c", "order-c"))
    assert not check(truth, observed).ok


def test_a_wrong_status_in_marketing_fails_the_run() -> None:
    truth, observed = healthy_run()
    observed.lead_status["a"] = "qualified"
    verdict = check(truth, observed)
    assert verdict.failures == ["1 with a wrong lead status"]


def test_campaign_figures_must_match_the_truth() -> None:
    truth, observed = healthy_run()
    assert observed.performance is not None
    observed.performance["revenue"] = [{"amount": str(WON_DEAL_AMOUNT * 3), "currency": "EUR"}]
    verdict = check(truth, observed)
    assert verdict.failures == [
        f"campaign revenue is {{'EUR': Decimal('{WON_DEAL_AMOUNT * 3}')}}, "
        f"acknowledged {{'EUR': Decimal('{WON_DEAL_AMOUNT * 2}')}}"
    ]


def test_an_unacknowledged_close_is_not_in_the_truth() -> None:
    # The clients' view is the truth: a close never acknowledged expects no order,
    # yet an order made for it is one without a won close.
    truth, observed = healthy_run()
    del truth.closed["b"]
    verdict = check(truth, observed)
    assert verdict.acked_closes == 2
    assert not verdict.ok


def test_webhooks_every_event_on_the_subscribed_topics_reaches_the_receiver() -> None:
    events = [
        Event(DEAL_CLOSED, 0, 0, "lead-1", "e1"),
        Event(DEAL_CLOSED, 0, 1, "lead-1", "e1"),  # a redelivered record: one event
        Event(ORDER_CREATED, 1, 0, "lead-1", "e2"),
        Event(LEAD_CREATED, 1, 0, "lead-1", "e3"),  # not subscribed
    ]
    topics = (DEAL_CLOSED, ORDER_CREATED)
    verdict = check_webhooks(events, Counter({"e1": 2, "e2": 1}), 0, topics)
    assert (verdict.ok, verdict.expected, verdict.delivered, verdict.redelivered) == (True, 2, 2, 1)

    lost = check_webhooks(events, Counter({"e1": 1}), 0, topics)
    assert (lost.ok, lost.lost) == (False, 1)
    assert lost.findings == {"event never delivered (1)": ["e2 (order.created[1]@0, lead lead-1)"]}

    made_up = check_webhooks(events, Counter({"e1": 1, "e2": 1, "e3": 1}), 0, topics)
    assert (made_up.ok, made_up.unexpected) == (False, 1)
    assert not check_webhooks(events, Counter({"e1": 1, "e2": 1}), 1, topics).ok
