"""A lead's life: capture, duplicates, engagement, qualification once, sales' outcome,
and what the lead, as each step leaves it, contributes to campaign performance."""

from collections.abc import Hashable
from datetime import timedelta
from decimal import Decimal

import pytest

from schemas.events import (
    Channel,
    Company,
    Contact,
    Customer,
    DealClosed,
    DealLine,
    Intent,
    LostReason,
    Outcome,
)
from services.marketing.domain.activities import Activity, ActivityType
from services.marketing.domain.attribution import Model
from services.marketing.domain.campaigns import Target
from services.marketing.domain.capture import CaptureRefused
from services.marketing.domain.leads import Lead, LeadStatus, capture, close_loop, record_activity
from services.marketing.domain.performance import contribution
from services.marketing.domain.rules import RuleSet
from services.runtime.errors import Conflict
from tests.unit.marketing.conftest import NOW, campaign
from tests.unit.marketing.conftest import capture as a_capture

LEAD = "lead-1"
EXPO = campaign()
WEBINAR = campaign("webinar")


def new_lead(rules: RuleSet, **overrides: object) -> Lead:
    return capture(None, LEAD, a_capture(**overrides), EXPO, rules, NOW, "cmd-0").lead  # type: ignore[arg-type]


def deal(outcome: Outcome, lost_reason: LostReason | None = None, deal_id: str = "deal-lead-1") -> DealClosed:
    won = outcome is Outcome.WON
    return DealClosed(
        deal_id=deal_id,
        lead_id=LEAD,
        campaign_id="expo",
        outcome=outcome,
        lost_reason=lost_reason,
        owner="rep-1",
        customer=Customer(company=Company(name="Acme"), contact=Contact(email="a@acme.io", name="Ana")),
        lines=[DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("9000.00"))]
        if won
        else [],
        amount=Decimal("9000.00") if won else Decimal("0"),
        currency="EUR",
        opened_at=NOW,
        first_contact_at=NOW,
        closed_at=NOW + timedelta(days=20),
    )


def test_a_first_capture_creates_the_lead_and_counts_for_its_campaign(rules: RuleSet) -> None:
    change = capture(None, LEAD, a_capture(), EXPO, rules, NOW, "cmd-1")
    assert change.created is not None
    assert change.created.lead_id == LEAD
    assert change.lead.status is LeadStatus.NURTURING
    assert change.duplicate is False
    assert change.before is None
    assert change.lead.campaign_id == "expo"
    assert change.lead.recaptures == {}
    assert (change.lead.won_amount, change.lead.won_currency) == (None, None)
    assert contribution(change.lead) == {("expo", "leads"): 1}


def test_a_hand_raiser_is_created_and_qualified_in_one_step(rules: RuleSet) -> None:
    change = capture(None, LEAD, a_capture(intent=Intent.DEMO_REQUEST), EXPO, rules, NOW, "cmd-1")
    assert change.qualified is not None
    assert change.qualified.reasons[0].rule == "hand_raiser"
    assert change.lead.status is LeadStatus.QUALIFIED
    assert change.lead.qualified_at == NOW
    assert contribution(change.lead) == {("expo", "leads"): 1, ("expo", "qualified"): 1}


def test_a_lead_without_a_campaign_counts_for_no_campaign(rules: RuleSet) -> None:
    change = capture(None, LEAD, a_capture(campaign_id=None, consent=False), None, rules, NOW, "cmd-1")
    assert change.lead.status is LeadStatus.DISQUALIFIED
    assert change.lead.campaign_id is None
    assert change.lead.recaptures == {}
    assert contribution(change.lead) == {}


def test_a_second_capture_is_engagement_on_the_same_lead(rules: RuleSet) -> None:
    lead = new_lead(rules)
    data = a_capture(campaign_id="webinar", channel=Channel.WEB)
    change = capture(lead, LEAD, data, WEBINAR, rules, NOW, "cmd-2")
    assert change.duplicate is True
    assert change.created is None
    assert change.lead.captures == 2
    assert change.lead.campaign_id == "expo"  # first touch keeps the lead
    assert change.lead.activities[-1].type is ActivityType.RECAPTURE
    assert change.lead.score == lead.score + 5
    # The duplicate capture counts for the campaign it came through.
    assert change.lead.recaptures == {"webinar": 1}


def test_recaptures_add_up_by_the_campaign_they_came_through(rules: RuleSet) -> None:
    lead = new_lead(rules)
    lead = capture(lead, LEAD, a_capture(campaign_id="webinar"), WEBINAR, rules, NOW, "cmd-2").lead
    lead = capture(lead, LEAD, a_capture(), EXPO, rules, NOW, "cmd-3").lead
    lead = capture(lead, LEAD, a_capture(campaign_id="webinar"), WEBINAR, rules, NOW, "cmd-4").lead
    # Through no campaign: another capture of the lead, but of no campaign's.
    lead = capture(lead, LEAD, a_capture(campaign_id=None), None, rules, NOW, "cmd-5").lead
    assert lead.captures == 5
    assert lead.recaptures == {"webinar": 2, "expo": 1}


def test_the_lead_keeps_scoring_against_its_first_campaign_s_target(rules: RuleSet) -> None:
    targeted = campaign(target=Target(industries=["software"], countries=["DE"]))
    lead = capture(None, LEAD, a_capture(), targeted, rules, NOW, "cmd-1").lead
    assert lead.campaign_target == targeted.target
    rules_that_counted = {r.rule for r in lead.reasons}
    assert {"fit.target_industry", "fit.target_country"} <= rules_that_counted
    # Captured again through a campaign without a target: still the first one's fit.
    again = capture(lead, LEAD, a_capture(campaign_id="other"), campaign("other"), rules, NOW, "cmd-2")
    assert {r.rule for r in again.lead.reasons} >= {"fit.target_industry", "fit.target_country"}
    click = record_activity(again.lead, Activity(type=ActivityType.EMAIL_CLICK, at=NOW), rules, NOW, "cmd-3")
    assert click.lead.score == again.lead.score + 5


def test_a_command_delivered_again_changes_nothing_and_announces_the_same_again(rules: RuleSet) -> None:
    # Its events may have died in the producer's buffer while the lead was stored.
    first = capture(None, LEAD, a_capture(), EXPO, rules, NOW, "cmd-1")
    lead = first.lead
    again = capture(lead, LEAD, a_capture(), EXPO, rules, NOW + timedelta(hours=1), "cmd-1")
    assert again.replayed
    assert again.lead == lead
    assert (again.created, again.qualified) == (first.created, None)  # identical, captured_at too
    assert again.lead.recaptures == {}
    assert again.lead.captures == 1
    click = Activity(type=ActivityType.EMAIL_CLICK, at=NOW)
    once = record_activity(lead, click, rules, NOW, "cmd-9").lead
    twice = record_activity(once, click, rules, NOW, "cmd-9")
    assert twice.replayed
    assert twice.created is None  # only the capture that created the lead announces it
    assert twice.lead.activities == once.activities


def test_a_duplicate_capture_delivered_again_is_counted_once(rules: RuleSet) -> None:
    lead = new_lead(rules)
    data = a_capture(campaign_id="webinar")
    once = capture(lead, LEAD, data, WEBINAR, rules, NOW, "cmd-2")
    twice = capture(once.lead, LEAD, data, WEBINAR, rules, NOW + timedelta(hours=1), "cmd-2")
    assert twice.replayed
    assert twice.lead == once.lead
    assert twice.lead.recaptures == {"webinar": 1}
    assert twice.lead.captures == 2
    assert contribution(twice.lead) == contribution(once.lead)


def test_a_nurtured_lead_qualifies_once_when_engagement_crosses_the_threshold(rules: RuleSet) -> None:
    lead = new_lead(rules)
    assert lead.status is LeadStatus.NURTURING
    assert contribution(lead) == {("expo", "leads"): 1}
    qualified = []
    for n, kind in enumerate(["content_download", "webinar_attended", "pricing_page_view", "event_visit"]):
        change = record_activity(lead, Activity(type=ActivityType(kind), at=NOW), rules, NOW, f"a{n}")
        lead = change.lead
        if change.qualified is not None:
            qualified.append((kind, change.qualified, lead.qualified_at))
    [(when, event, qualified_at)] = qualified
    assert when == "pricing_page_view"  # 33 fit + 10 + 15 + 10 = 68 >= 60
    assert event.score == 68
    assert qualified_at == NOW
    assert lead.status is LeadStatus.QUALIFIED
    assert contribution(lead) == {("expo", "leads"): 1, ("expo", "qualified"): 1}


def test_leaving_and_reentering_disqualification_shows_in_the_lead_s_status(rules: RuleSet) -> None:
    lead = new_lead(rules, consent=False)
    assert lead.status is LeadStatus.DISQUALIFIED
    assert contribution(lead) == {("expo", "leads"): 1, ("expo", "disqualified"): 1}
    back = capture(lead, LEAD, a_capture(consent=True), EXPO, rules, NOW, "cmd-2")
    assert back.lead.status is LeadStatus.NURTURING
    assert back.lead.recaptures == {"expo": 1}
    assert contribution(back.lead) == {("expo", "leads"): 1, ("expo", "duplicate_captures"): 1}
    out = record_activity(back.lead, Activity(type=ActivityType.UNSUBSCRIBE, at=NOW), rules, NOW, "cmd-3")
    assert out.lead.status is LeadStatus.DISQUALIFIED
    assert out.lead.consent is False
    assert contribution(out.lead) == {
        ("expo", "leads"): 1,
        ("expo", "duplicate_captures"): 1,
        ("expo", "disqualified"): 1,
    }


def test_a_refused_capture_changes_nothing(rules: RuleSet) -> None:
    lead = new_lead(rules)
    with pytest.raises(CaptureRefused) as refused:
        capture(lead, LEAD, a_capture(channel=Channel.WEB, consent=False), EXPO, rules, NOW, "cmd-2")
    assert [p.field for p in refused.value.problems] == ["consent"]
    assert lead.recaptures == {}
    assert lead.captures == 1
    with pytest.raises(CaptureRefused):
        capture(None, LEAD, a_capture(campaign_id="gone"), None, rules, NOW, "cmd-3")


@pytest.mark.parametrize(
    ("outcome", "reason", "status", "won_amount", "won_currency"),
    [
        (Outcome.WON, None, LeadStatus.WON, Decimal("9000.00"), "EUR"),
        (Outcome.LOST, LostReason.NO_BUDGET, LeadStatus.LOST, None, None),
        (Outcome.LOST, LostReason.NOT_A_REAL_LEAD, LeadStatus.RECYCLED, None, None),
    ],
)
def test_sales_outcome_closes_the_lead_and_keeps_what_it_won(
    rules: RuleSet,
    outcome: Outcome,
    reason: LostReason | None,
    status: LeadStatus,
    won_amount: Decimal | None,
    won_currency: str | None,
) -> None:
    lead = new_lead(rules, intent=Intent.DEMO_REQUEST)
    change = close_loop(lead, deal(outcome, reason))
    assert change.before is LeadStatus.QUALIFIED
    assert change.lead.status is status
    assert (change.lead.deal_id, change.lead.lost_reason) == ("deal-lead-1", reason)
    assert change.lead.closed_at == change.lead.updated_at == NOW + timedelta(days=20)
    assert (change.lead.won_amount, change.lead.won_currency) == (won_amount, won_currency)


def test_the_same_outcome_again_is_a_replay_and_another_deal_a_conflict(rules: RuleSet) -> None:
    lead = close_loop(new_lead(rules, intent=Intent.DEMO_REQUEST), deal(Outcome.WON)).lead
    again = close_loop(lead, deal(Outcome.WON))
    assert again.replayed
    assert again.lead == lead
    assert (again.lead.won_amount, again.lead.won_currency) == (Decimal("9000.00"), "EUR")
    with pytest.raises(Conflict):
        close_loop(lead, deal(Outcome.LOST, LostReason.OTHER, deal_id="deal-other"))


# What a lead contributes to campaign performance, as each step leaves it.

QUALIFIED: dict[Hashable, int | Decimal] = {("expo", "leads"): 1, ("expo", "qualified"): 1}


def test_a_won_lead_contributes_its_deal_and_revenue_to_its_campaign(rules: RuleSet) -> None:
    won = close_loop(new_lead(rules, intent=Intent.DEMO_REQUEST), deal(Outcome.WON)).lead
    # Its one touch takes it all under every model.
    attributed: dict[Hashable, Decimal] = {
        ("expo", "attributed", model, "EUR"): Decimal("9000.00") for model in Model
    }
    assert contribution(won) == {
        **QUALIFIED,
        ("expo", "deals_won"): 1,
        ("expo", "revenue", "EUR"): Decimal("9000.00"),
        **attributed,
    }


def test_a_lost_lead_contributes_a_lost_deal_and_no_revenue(rules: RuleSet) -> None:
    lost = close_loop(new_lead(rules, intent=Intent.DEMO_REQUEST), deal(Outcome.LOST, LostReason.NO_BUDGET))
    assert contribution(lost.lead) == {**QUALIFIED, ("expo", "deals_lost"): 1}


def test_a_recycled_lead_is_a_lost_deal_and_not_a_real_lead(rules: RuleSet) -> None:
    recycled = close_loop(
        new_lead(rules, intent=Intent.DEMO_REQUEST), deal(Outcome.LOST, LostReason.NOT_A_REAL_LEAD)
    ).lead
    assert recycled.status is LeadStatus.RECYCLED
    assert contribution(recycled) == {
        **QUALIFIED,
        ("expo", "deals_lost"): 1,
        ("expo", "not_a_real_lead"): 1,
    }


def test_a_qualified_lead_stays_counted_as_qualified_once_closed(rules: RuleSet) -> None:
    lead = new_lead(rules, intent=Intent.DEMO_REQUEST)
    for closed in (deal(Outcome.WON), deal(Outcome.LOST, LostReason.NO_BUDGET)):
        assert contribution(close_loop(lead, closed).lead)[("expo", "qualified")] == 1


def test_a_recaptured_lead_counts_duplicates_under_the_recapturing_campaign(rules: RuleSet) -> None:
    lead = new_lead(rules)
    lead = capture(lead, LEAD, a_capture(campaign_id="webinar"), WEBINAR, rules, NOW, "cmd-2").lead
    lead = capture(lead, LEAD, a_capture(campaign_id="webinar"), WEBINAR, rules, NOW, "cmd-3").lead
    assert contribution(lead) == {("expo", "leads"): 1, ("webinar", "duplicate_captures"): 2}


def test_a_lead_without_a_campaign_contributes_only_its_recaptures(rules: RuleSet) -> None:
    lead = capture(None, LEAD, a_capture(campaign_id=None), None, rules, NOW, "cmd-1").lead
    assert contribution(lead) == {}
    lead = capture(lead, LEAD, a_capture(), EXPO, rules, NOW, "cmd-2").lead
    assert lead.campaign_id is None  # first touch: it stays without one
    assert contribution(lead) == {("expo", "duplicate_captures"): 1}
    won = close_loop(lead, deal(Outcome.WON)).lead
    # First touch: no campaign (as revenue); last: expo; linear and U-shaped: half each.
    assert contribution(won) == {
        ("expo", "duplicate_captures"): 1,
        ("", "attributed", "first_touch", "EUR"): Decimal("9000.00"),
        ("expo", "attributed", "last_touch", "EUR"): Decimal("9000.00"),
        ("", "attributed", "linear", "EUR"): Decimal("4500.00"),
        ("expo", "attributed", "linear", "EUR"): Decimal("4500.00"),
        ("", "attributed", "u_shaped", "EUR"): Decimal("4500.00"),
        ("expo", "attributed", "u_shaped", "EUR"): Decimal("4500.00"),
    }


def test_a_qualified_lead_s_handover_is_announced_again_identical_by_any_command_delivered_again(
    rules: RuleSet,
) -> None:
    data = a_capture(intent=Intent.DEMO_REQUEST)
    first = capture(None, LEAD, data, EXPO, rules, NOW, "cmd-1")
    assert first.qualified is not None
    later = NOW + timedelta(days=2)
    engaged = record_activity(
        first.lead, Activity(type=ActivityType.PAGE_VIEW, at=later), rules, later, "cmd-2"
    )
    again = record_activity(
        engaged.lead, Activity(type=ActivityType.PAGE_VIEW, at=later), rules, later, "cmd-2"
    )
    assert again.replayed
    assert again.qualified == first.qualified
    recaptured = capture(engaged.lead, LEAD, data, EXPO, rules, later, "cmd-1")  # the same command
    assert (recaptured.created, recaptured.qualified) == (first.created, first.qualified)
