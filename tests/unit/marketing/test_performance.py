"""Campaign performance maths, on a scenario worked out by hand: counts summed
from the leads' own state, as the workers' tallies sum them."""

from collections import Counter
from collections.abc import Hashable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from schemas.events import Channel, Company, Contact, LostReason
from services.marketing.domain.leads import Lead, LeadStatus
from services.marketing.domain.performance import (
    CampaignCounts,
    contribution,
    counts_of,
    counts_over,
    performance,
)
from tests.unit.marketing.conftest import NOW, campaign


def lead(n: int, status: LeadStatus = LeadStatus.NEW, campaign_id: str | None = "expo", **state: Any) -> Lead:
    return Lead(
        lead_id=f"l{n}",
        campaign_id=campaign_id,
        channel=Channel.EVENT,
        contact=Contact(email=f"p{n}@acme.example", name="P"),
        company=Company(name="Acme"),
        consent=True,
        intent=None,
        status=status,
        captured_at=NOW,
        updated_at=state.pop("updated_at", NOW),
        **state,
    )


def qualified(n: int, status: LeadStatus = LeadStatus.QUALIFIED, **state: Any) -> Lead:
    return lead(n, status, qualified_at=NOW, **state)


def won(n: int, amount: str, currency: str = "EUR") -> Lead:
    return qualified(n, LeadStatus.WON, won_amount=Decimal(amount), won_currency=currency)


def counts(*leads: Lead, campaign_id: str = "expo") -> CampaignCounts:
    """What one worker holding `leads` answers for the campaign."""
    return counts_over(campaign_id, leads)


SCENARIO = (
    # four leads, one person captured again, three MQLs, one disqualified
    qualified(1, LeadStatus.WON, won_amount=Decimal("14400.00"), won_currency="EUR", recaptures={"expo": 1}),
    qualified(2, LeadStatus.LOST, lost_reason=LostReason.NO_BUDGET),
    qualified(3, LeadStatus.RECYCLED, lost_reason=LostReason.NOT_A_REAL_LEAD),
    lead(4, LeadStatus.DISQUALIFIED),
)


def test_the_hand_worked_scenario() -> None:
    result = performance(campaign(budget="10000.00"), counts(*SCENARIO))
    assert (result.leads, result.duplicate_captures, result.qualified, result.disqualified) == (4, 1, 3, 1)
    assert (result.deals_won, result.deals_lost, result.not_a_real_lead) == (1, 2, 1)
    assert result.model_dump(mode="json") == {
        "campaign_id": "expo",
        "name": "Expo 2026",
        "channel": "event",
        "spend": {"amount": "10000.00", "currency": "EUR"},
        "leads": 4,
        "duplicate_captures": 1,
        "qualified": 3,
        "disqualified": 1,
        "deals_won": 1,
        "deals_lost": 2,
        "not_a_real_lead": 1,
        "revenue": [{"amount": "14400.00", "currency": "EUR"}],
        "cost_per_lead": {"amount": "2500.00", "currency": "EUR"},  # 10000 / 4
        "cost_per_won_deal": {"amount": "10000.00", "currency": "EUR"},  # 10000 / 1
        "roi": "0.4400",  # (14400 - 10000) / 10000
        "roi_note": None,
        "lead_to_mql": "0.7500",  # 3 / 4
        "mql_to_won": "0.3333",  # 1 / 3
        "attribution": "first_touch",
        "attributed_revenue": [{"amount": "14400.00", "currency": "EUR"}],  # its only campaign
        "attributed_roi": "0.4400",
        "attributed_roi_note": None,
        "updated_at": "2026-03-10T12:00:00Z",
    }


def test_workers_counts_over_their_own_leads_add_up_to_the_campaigns() -> None:
    later = NOW + timedelta(hours=1)
    one, other = counts(*SCENARIO[:2]), counts(*SCENARIO[2:], won(5, "0.10", "USD"))
    assert one + other == counts(*SCENARIO, won(5, "0.10", "USD"))
    assert (one + CampaignCounts()) == one
    assert (one + counts(lead(6, updated_at=later))).updated_at == later
    assert (one + other).revenue == {"EUR": Decimal("14400.00"), "USD": Decimal("0.10")}


def test_a_lead_counts_only_for_its_own_campaign() -> None:
    elsewhere = counts(*SCENARIO, lead(9, campaign_id="webinar"), lead(10, campaign_id=None))
    assert elsewhere == counts(*SCENARIO)
    assert counts(*SCENARIO, campaign_id="webinar").leads == 0


def test_a_duplicate_capture_counts_where_the_person_came_through_again() -> None:
    # l7 is an expo lead captured again through the webinar and, without a campaign, once more.
    again = lead(7, recaptures={"webinar": 2})
    assert contribution(again) == {("expo", "leads"): 1, ("webinar", "duplicate_captures"): 2}
    assert counts(again, campaign_id="webinar").duplicate_captures == 2
    assert counts(again, campaign_id="webinar").leads == 0
    assert counts(again).duplicate_captures == 0
    assert counts(again, campaign_id="webinar").updated_at == NOW


def test_a_lead_counts_what_it_is_now_so_a_step_counted_twice_is_still_one() -> None:
    before, after = lead(8, LeadStatus.DISQUALIFIED), lead(8, LeadStatus.NURTURING)
    totals: Counter[Hashable] = Counter(contribution(before))
    # A write takes the replaced state's contribution away and adds the new one's.
    totals.subtract(contribution(before))
    totals.update(contribution(after))
    assert counts_of("expo", totals, {}).disqualified == 0  # reinstated: no longer disqualified
    assert counts_of("expo", totals, {}).leads == 1
    # The same won deal stored again replaces the lead by an equal one: nothing changes.
    stored = won(1, "14400.00")
    totals.update(contribution(stored))
    totals.subtract(contribution(stored))
    totals.update(contribution(stored))
    assert counts_of("expo", totals, {}).deals_won == 1


def test_a_campaign_without_results_has_nothing_to_divide_by() -> None:
    result = performance(campaign(budget="5000.00"), CampaignCounts())
    assert (result.leads, result.revenue) == (0, [])
    assert result.cost_per_lead is None
    assert result.cost_per_won_deal is None
    assert result.lead_to_mql is None
    assert result.mql_to_won is None
    assert result.roi == Decimal("-1.0000")  # spent and nothing back yet
    assert result.updated_at is None


def test_revenue_in_another_currency_leaves_roi_undefined_rather_than_guessed() -> None:
    result = performance(
        campaign(budget="4000.00", currency="EUR"), counts(won(1, "5000.00", "USD"), won(2, "3000.00"))
    )
    assert result.roi is None
    assert result.roi_note is not None
    assert "USD" in result.roi_note
    assert [(m.amount, m.currency) for m in result.revenue] == [
        (Decimal("3000.00"), "EUR"),
        (Decimal("5000.00"), "USD"),
    ]
    # What does not depend on exchange rates is still there.
    assert result.cost_per_won_deal is not None
    assert result.cost_per_won_deal.amount == Decimal("2000.00")


def test_a_campaign_that_cost_nothing_has_no_roi_but_free_leads() -> None:
    result = performance(campaign(budget="0"), counts(lead(1)))
    assert result.roi is None
    assert result.roi_note == "the campaign has no spend to return on"
    assert result.cost_per_lead is not None
    assert result.cost_per_lead.amount == Decimal("0.00")


def test_money_is_decimal_to_the_cent_rounding_half_to_even() -> None:
    result = performance(campaign(budget="100.00"), counts(won(1, "0.10"), won(2, "0.20"), qualified(3)))
    assert result.revenue[0].amount == Decimal("0.30")  # not 0.30000000000000004
    assert result.cost_per_lead is not None
    assert result.cost_per_lead.amount == Decimal("33.33")
    assert result.mql_to_won == Decimal("0.6667")
    assert result.cost_per_won_deal is not None
    assert result.cost_per_won_deal.amount == Decimal("50.00")
    halfway = performance(campaign(budget="0.25"), counts(lead(1), lead(2))).cost_per_lead
    assert halfway is not None
    assert halfway.amount == Decimal("0.12")  # 0.125: half to even, not up


def test_a_workers_share_crosses_the_wire_exactly() -> None:
    share = counts(*SCENARIO, won(5, "0.10"))
    stored = share.model_dump(mode="json")
    assert stored["revenue"] == {"EUR": "14400.10"}
    assert CampaignCounts.model_validate_json(share.model_dump_json()) == share
