"""The funnel read model: journeys merged from sales' and orders' events in any order,
and the funnel summed from leads as the workers' tallies sum them."""

import json
from collections import Counter
from collections.abc import Hashable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import permutations
from typing import Any

from schemas.events import (
    Channel,
    Company,
    Contact,
    Customer,
    DealChange,
    DealClosed,
    DealLine,
    DealStage,
    DealUpdated,
    LostReason,
    OrderCreated,
    OrderLine,
    OrderStatus,
    OrderUpdated,
    Outcome,
)
from services.marketing.domain.funnel import (
    contribution,
    decode_sums,
    encode_sums,
    funnel_from,
    with_campaigns,
)
from services.marketing.domain.journey import Journey, with_close, with_order, with_order_update, with_update
from services.marketing.domain.leads import Lead, LeadStatus, close_loop
from tests.unit.marketing.conftest import NOW, campaign

HOUR = timedelta(hours=1)
SLA = timedelta(hours=24)
CUSTOMER = Customer(company=Company(name="Acme"), contact=Contact(email="a@acme.example", name="A"))


def lead(
    n: int, status: LeadStatus = LeadStatus.QUALIFIED, campaign_id: str | None = "expo", **state: Any
) -> Lead:
    return Lead(
        lead_id=f"l{n}",
        campaign_id=campaign_id,
        channel=state.pop("channel", Channel.EVENT),
        contact=Contact(email=f"p{n}@acme.example", name="P"),
        company=Company(name="Acme"),
        consent=True,
        intent=None,
        status=status,
        captured_at=state.pop("captured_at", NOW),
        updated_at=NOW,
        qualified_at=NOW
        if status not in (LeadStatus.NEW, LeadStatus.NURTURING, LeadStatus.DISQUALIFIED)
        else None,
        **state,
    )


def updated(
    n: int,
    stage: DealStage,
    *,
    previous: DealStage | None = None,
    owner: str | None = "rep-1",
    contact_after: timedelta | None = None,
    at: datetime | None = None,
) -> DealUpdated:
    opened = NOW + HOUR
    return DealUpdated(
        deal_id=f"deal-l{n}",
        lead_id=f"l{n}",
        campaign_id="expo",
        changes=[DealChange.STAGE_CHANGED] if previous else [DealChange.OPENED],
        stage=stage,
        previous_stage=previous,
        owner=owner,
        opened_at=opened,
        stage_entered_at=at or opened,
        first_contact_at=None if contact_after is None else opened + contact_after,
        follow_up_due_at=opened + SLA,
        updated_at=at or opened,
    )


def closed(n: int, outcome: Outcome, reason: LostReason | None = None, amount: str = "0.00") -> DealClosed:
    return DealClosed(
        deal_id=f"deal-l{n}",
        lead_id=f"l{n}",
        campaign_id="expo",
        outcome=outcome,
        lost_reason=reason,
        owner="rep-1",
        customer=CUSTOMER,
        lines=[]
        if outcome is Outcome.LOST
        else [DealLine(sku="CORE", name="Core", quantity=1, unit_price=Decimal(amount))],
        amount=Decimal(amount),
        currency="EUR",
        opened_at=NOW + HOUR,
        first_contact_at=NOW + 2 * HOUR,
        closed_at=NOW + 5 * HOUR,
    )


def order(n: int, total: str) -> OrderCreated:
    return OrderCreated(
        order_id=f"order-l{n}",
        deal_id=f"deal-l{n}",
        lead_id=f"l{n}",
        customer=CUSTOMER,
        lines=[
            OrderLine(
                sku="CORE", name="Core", quantity=1, unit_price=Decimal(total), line_total=Decimal(total)
            )
        ],
        total=Decimal(total),
        currency="EUR",
        created_at=NOW + 6 * HOUR,
    )


def order_moved(n: int, status: OrderStatus, at: datetime) -> OrderUpdated:
    previous = OrderStatus.CREATED if status is OrderStatus.CONFIRMED else OrderStatus.CONFIRMED
    return OrderUpdated(
        order_id=f"order-l{n}",
        deal_id=f"deal-l{n}",
        lead_id=f"l{n}",
        status=status,
        previous_status=previous,
        total=Decimal("12000.00"),
        currency="EUR",
        updated_at=at,
    )


def sums(leads: Iterable[Lead]) -> Counter[Hashable]:
    total: Counter[Hashable] = Counter()
    for one in leads:
        total.update(contribution(one))
    return total


def test_a_journey_is_the_same_whatever_order_its_events_come_in_and_however_often() -> None:
    events = [
        updated(1, DealStage.PROSPECTING),
        updated(1, DealStage.PRESENTING, previous=DealStage.QUALIFYING, contact_after=3 * HOUR),
        updated(1, DealStage.QUALIFYING, previous=DealStage.PROSPECTING, contact_after=3 * HOUR),
        closed(1, Outcome.WON, amount="12000.00"),
        order(1, "12000.00"),
        order_moved(1, OrderStatus.CONFIRMED, NOW + 7 * HOUR),
        order_moved(1, OrderStatus.FULFILLED, NOW + 9 * HOUR),
    ]

    def apply(journey: Journey | None, event: Any) -> Journey:
        match event:
            case DealUpdated():
                return with_update(journey, event)
            case DealClosed():
                return with_close(journey, event)
        if isinstance(event, OrderUpdated):
            return with_order_update(journey, event)
        return with_order(journey, event)

    results: list[Journey | None] = []
    for order_of in permutations(events):
        journey = None
        for event in [*order_of, *order_of]:  # each delivered twice
            journey = apply(journey, event)
        results.append(journey)
    journey = results[0]
    assert all(other == journey for other in results)
    assert journey is not None
    # deal.closed's first contact (2 h) is earlier than the moves' (3 h): the earliest wins.
    assert journey.first_contact_at == NOW + HOUR + HOUR
    assert journey.stages == [DealStage.PROSPECTING, DealStage.QUALIFYING, DealStage.PRESENTING]
    assert (journey.owner, journey.follow_up_due_at) == ("rep-1", NOW + HOUR + SLA)
    assert (journey.ordered_at, journey.order_total) == (NOW + 6 * HOUR, Decimal("12000.00"))
    assert (journey.fulfilled_at, journey.cancelled_at) == (NOW + 9 * HOUR, None)


def scenario() -> list[Lead]:
    """Six leads of 'expo' and one of no campaign, worked out by hand below."""
    j = Journey
    contacted_in = {1: HOUR / 2, 2: 30 * HOUR}
    return [
        # won and ordered, contacted in 30 min (SLA met), reached closing
        lead(
            1,
            LeadStatus.WON,
            won_amount=Decimal("14400.00"),
            won_currency="EUR",
            lost_reason=None,
            journey=j(
                deal_opened_at=NOW,
                owner="rep-1",
                first_contact_at=NOW + contacted_in[1],
                follow_up_due_at=NOW + SLA,
                stages=[DealStage.PROSPECTING, DealStage.PRESENTING, DealStage.CLOSING],
                ordered_at=NOW + 48 * HOUR,
                order_total=Decimal("14400.00"),
                order_currency="EUR",
                fulfilled_at=NOW + 96 * HOUR,
            ),
        ),
        # sent back as not a real lead, contacted after 30 h (SLA breached)
        lead(
            2,
            LeadStatus.RECYCLED,
            lost_reason=LostReason.NOT_A_REAL_LEAD,
            journey=j(
                deal_opened_at=NOW,
                owner="rep-2",
                first_contact_at=NOW + contacted_in[2],
                follow_up_due_at=NOW + SLA,
                stages=[DealStage.PROSPECTING],
            ),
        ),
        # deal open, nobody called yet: pending until its due time, breached after
        lead(
            3,
            journey=j(
                deal_opened_at=NOW, owner=None, follow_up_due_at=NOW + SLA, stages=[DealStage.PROSPECTING]
            ),
        ),
        # qualified, no deal yet (sales has not opened it)
        lead(4),
        lead(5, LeadStatus.DISQUALIFIED, disqualified_by=["consent.missing"]),
        lead(6, LeadStatus.NURTURING),
        lead(7, LeadStatus.NEW, campaign_id=None, channel=Channel.WEB, captured_at=NOW + 48 * HOUR),
    ]


def test_the_hand_worked_funnel() -> None:
    funnel = funnel_from(sums(scenario()), NOW + 2 * HOUR)
    assert [(s.step, s.count) for s in funnel.steps] == [
        ("captured", 7),
        ("qualified", 4),
        ("deal_opened", 3),
        ("contacted", 2),
        ("stage:prospecting", 3),
        ("stage:qualifying", 1),  # the won deal skipped it: passed all the same
        ("stage:presenting", 1),
        ("stage:handling_objections", 1),
        ("stage:closing", 1),
        ("won", 1),
        ("ordered", 1),
        ("fulfilled", 1),
    ]
    assert [str(s.conversion) for s in funnel.steps[:4]] == ["None", "0.5714", "0.7500", "0.6667"]
    assert (funnel.nurturing, funnel.disqualified, funnel.disqualified_by) == (2, 1, {"consent.missing": 1})
    assert funnel.lost_reasons == {"not_a_real_lead": 1}
    handover = funnel.handover
    assert (handover.contacted, handover.not_a_real_lead, str(handover.not_a_real_lead_share)) == (
        2,
        1,
        "0.5000",
    )
    assert (handover.follow_up.met, handover.follow_up.breached, handover.follow_up.pending) == (1, 1, 1)
    assert [(r.owner, r.met, r.breached, r.pending) for r in handover.follow_up_by_rep] == [
        ("rep-1", 1, 0, 0),
        ("rep-2", 0, 1, 0),
        ("unassigned", 0, 0, 1),
    ]
    # Two contacts: 30 min (bucket <= 1800 s) and 30 h (<= 48 h): the median is the first's bucket.
    assert handover.median_time_to_first_contact_seconds == 1800
    assert [(r.amount, r.currency) for r in funnel.revenue] == [(Decimal("14400.00"), "EUR")]
    assert [(r.amount, r.currency) for r in funnel.ordered_value] == [(Decimal("14400.00"), "EUR")]
    expo, none = funnel.campaigns
    assert (expo.key, expo.captured, expo.qualified, expo.deal_opened, expo.won, expo.lost, expo.ordered) == (
        "expo",
        6,
        4,
        3,
        1,
        1,
        1,
    )
    assert (none.key, none.captured) == (None, 1)
    assert [(c.key, c.captured) for c in funnel.channels] == [("event", 6), ("web", 1)]


def test_an_uncontacted_deal_breaches_once_its_due_time_has_passed() -> None:
    later = funnel_from(sums(scenario()), NOW + 25 * HOUR)
    assert (later.handover.follow_up.breached, later.handover.follow_up.pending) == (2, 0)


def test_filters_select_campaign_channel_and_capture_days() -> None:
    total = sums(scenario())
    web = funnel_from(total, NOW, channel="web")
    assert web.steps[0].count == 1
    expo = funnel_from(total, NOW, campaign_id="expo")
    assert expo.steps[0].count == 6
    first_day = funnel_from(total, NOW, since=NOW.date(), until=NOW.date())
    assert first_day.steps[0].count == 6
    later = funnel_from(total, NOW, since=date(2026, 3, 11))
    assert (later.steps[0].count, later.handover.follow_up.met) == (1, 0)


def test_campaign_rows_carry_spend_and_roi_and_sums_travel_as_json() -> None:
    wire = decode_sums(json.loads(json.dumps(encode_sums(sums(scenario())))))
    assert wire == sums(scenario())
    funnel = with_campaigns(funnel_from(wire, NOW), [campaign(budget="10000.00")])
    expo = funnel.campaigns[0]
    assert (expo.name, expo.spend.amount if expo.spend else None, str(expo.roi)) == (
        "Expo 2026",
        Decimal("10000.00"),
        "0.4400",
    )


def test_closing_the_loop_records_the_journey_too() -> None:
    one = lead(1)
    change = close_loop(one, closed(1, Outcome.LOST, LostReason.NO_BUDGET))
    assert change.lead.journey == Journey(
        deal_opened_at=NOW + HOUR,
        owner="rep-1",
        first_contact_at=NOW + 2 * HOUR,
        stages=[DealStage.PROSPECTING],
    )
    adds = contribution(change.lead)
    assert adds[("funnel", "expo", "event", NOW.date().isoformat(), "deal_opened")] == 1
    assert adds[("funnel", "expo", "event", NOW.date().isoformat(), "lost_reason", "no_budget")] == 1


def test_a_cancelled_order_is_counted_and_never_fulfilled() -> None:
    journey = with_order_update(
        with_order(None, order(1, "12000.00")), order_moved(1, OrderStatus.CANCELLED, NOW)
    )
    assert (journey.cancelled_at, journey.fulfilled_at) == (NOW, None)
    cancelled = lead(1, LeadStatus.WON, won_amount=Decimal("12000.00"), won_currency="EUR", journey=journey)
    funnel = funnel_from(contribution(cancelled), NOW)
    assert ({s.step: s.count for s in funnel.steps}["fulfilled"], funnel.orders_cancelled) == (0, 1)
