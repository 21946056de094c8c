"""A lead's life: capture, duplicates, engagement, qualification once, sales' outcome,
and the campaign facts each step yields."""

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
from services.marketing.domain.campaigns import Target
from services.marketing.domain.capture import CaptureRefused
from services.marketing.domain.leads import Change, Lead, LeadStatus, capture, close_loop, record_activity
from services.marketing.domain.performance import FactKind
from services.marketing.domain.rules import RuleSet
from services.runtime.errors import Conflict
from tests.unit.marketing.conftest import NOW, campaign
from tests.unit.marketing.conftest import capture as a_capture

LEAD = "lead-1"
EXPO = campaign()


def kinds(change: Change) -> list[FactKind]:
    return [f.kind for f in change.facts]


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
    [fact] = change.facts
    assert (fact.kind, fact.fact_id, fact.campaign_id, fact.lead_id) == (
        FactKind.CAPTURED,
        "lead-1:captured",
        "expo",
        LEAD,
    )


def test_a_hand_raiser_is_created_and_qualified_in_one_step(rules: RuleSet) -> None:
    change = capture(None, LEAD, a_capture(intent=Intent.DEMO_REQUEST), EXPO, rules, NOW, "cmd-1")
    assert change.qualified is not None
    assert change.qualified.reasons[0].rule == "hand_raiser"
    assert change.lead.qualified_at == NOW
    assert kinds(change) == [FactKind.CAPTURED, FactKind.QUALIFIED]


def test_a_lead_without_a_campaign_yields_no_campaign_facts(rules: RuleSet) -> None:
    change = capture(None, LEAD, a_capture(campaign_id=None, consent=False), None, rules, NOW, "cmd-1")
    assert change.lead.status is LeadStatus.DISQUALIFIED
    assert change.facts == ()


def test_a_second_capture_is_engagement_on_the_same_lead(rules: RuleSet) -> None:
    lead = new_lead(rules)
    other = campaign("webinar")
    data = a_capture(campaign_id="webinar", channel=Channel.WEB)
    change = capture(lead, LEAD, data, other, rules, NOW, "cmd-2")
    assert change.duplicate is True
    assert change.created is None
    assert change.lead.captures == 2
    assert change.lead.campaign_id == "expo"  # first touch keeps the lead
    assert change.lead.activities[-1].type is ActivityType.RECAPTURE
    assert change.lead.score == lead.score + 5
    [fact] = change.facts
    assert (fact.kind, fact.campaign_id, fact.fact_id) == (
        FactKind.DUPLICATE_CAPTURE,
        "webinar",
        "cmd-2:duplicate_capture",
    )


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


def test_a_command_delivered_again_changes_nothing(rules: RuleSet) -> None:
    lead = capture(None, LEAD, a_capture(), EXPO, rules, NOW, "cmd-1").lead
    again = capture(lead, LEAD, a_capture(), EXPO, rules, NOW, "cmd-1")
    assert again.replayed
    assert again.lead == lead
    assert (again.created, again.qualified, again.facts) == (None, None, ())
    click = Activity(type=ActivityType.EMAIL_CLICK, at=NOW)
    once = record_activity(lead, click, rules, NOW, "cmd-9").lead
    twice = record_activity(once, click, rules, NOW, "cmd-9")
    assert twice.replayed
    assert twice.lead.activities == once.activities


def test_a_nurtured_lead_qualifies_once_when_engagement_crosses_the_threshold(rules: RuleSet) -> None:
    lead = new_lead(rules)
    assert lead.status is LeadStatus.NURTURING
    qualified = []
    for n, kind in enumerate(["content_download", "webinar_attended", "pricing_page_view", "event_visit"]):
        change = record_activity(lead, Activity(type=ActivityType(kind), at=NOW), rules, NOW, f"a{n}")
        lead = change.lead
        if change.qualified is not None:
            qualified.append((kind, change.qualified, kinds(change)))
    [(when, event, facts)] = qualified
    assert when == "pricing_page_view"  # 33 fit + 10 + 15 + 10 = 68 >= 60
    assert event.score == 68
    assert facts == [FactKind.QUALIFIED]
    assert lead.status is LeadStatus.QUALIFIED


def test_leaving_and_reentering_disqualification_are_facts_of_their_cause(rules: RuleSet) -> None:
    lead = new_lead(rules, consent=False)
    assert lead.status is LeadStatus.DISQUALIFIED
    back = capture(lead, LEAD, a_capture(consent=True), EXPO, rules, NOW, "cmd-2")
    assert back.lead.status is LeadStatus.NURTURING
    assert kinds(back) == [FactKind.DUPLICATE_CAPTURE, FactKind.REINSTATED]
    out = record_activity(back.lead, Activity(type=ActivityType.UNSUBSCRIBE, at=NOW), rules, NOW, "cmd-3")
    assert out.lead.status is LeadStatus.DISQUALIFIED
    assert out.lead.consent is False
    assert [f.fact_id for f in out.facts] == ["cmd-3:disqualified"]


def test_a_refused_capture_changes_nothing(rules: RuleSet) -> None:
    lead = new_lead(rules)
    with pytest.raises(CaptureRefused) as refused:
        capture(lead, LEAD, a_capture(channel=Channel.WEB, consent=False), EXPO, rules, NOW, "cmd-2")
    assert [p.field for p in refused.value.problems] == ["consent"]
    with pytest.raises(CaptureRefused):
        capture(None, LEAD, a_capture(campaign_id="gone"), None, rules, NOW, "cmd-3")


@pytest.mark.parametrize(
    ("outcome", "reason", "status"),
    [
        (Outcome.WON, None, LeadStatus.WON),
        (Outcome.LOST, LostReason.NO_BUDGET, LeadStatus.LOST),
        (Outcome.LOST, LostReason.NOT_A_REAL_LEAD, LeadStatus.RECYCLED),
    ],
)
def test_sales_outcome_closes_the_lead_and_reaches_its_campaign(
    rules: RuleSet, outcome: Outcome, reason: LostReason | None, status: LeadStatus
) -> None:
    lead = new_lead(rules, intent=Intent.DEMO_REQUEST)
    change = close_loop(lead, deal(outcome, reason))
    assert change.lead.status is status
    [fact] = change.facts
    assert fact.fact_id == f"deal-lead-1:{outcome}"
    assert fact.kind == outcome.value
    assert fact.lost_reason == reason
    assert fact.amount == (Decimal("9000.00") if outcome is Outcome.WON else None)


def test_the_same_outcome_again_is_a_replay_and_another_deal_a_conflict(rules: RuleSet) -> None:
    lead = close_loop(new_lead(rules, intent=Intent.DEMO_REQUEST), deal(Outcome.WON)).lead
    again = close_loop(lead, deal(Outcome.WON))
    assert again.replayed
    assert again.facts == ()
    with pytest.raises(Conflict):
        close_loop(lead, deal(Outcome.LOST, LostReason.OTHER, deal_id="deal-other"))
