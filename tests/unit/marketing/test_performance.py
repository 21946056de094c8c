"""Campaign performance maths, on a scenario worked out by hand."""

from decimal import Decimal

import pytest

from schemas.events import LostReason
from services.marketing.domain.performance import (
    MAX_REMEMBERED,
    CampaignFact,
    FactKind,
    Tally,
    performance,
)
from tests.unit.marketing.conftest import NOW, campaign


def fact(kind: FactKind, fact_id: str, campaign_id: str = "expo", **extra: object) -> CampaignFact:
    return CampaignFact.model_validate(
        {"fact_id": fact_id, "campaign_id": campaign_id, "lead_id": "lead", "kind": kind, "at": NOW, **extra}
    )


def tally_of(*facts: CampaignFact) -> Tally:
    tally = Tally(campaign_id="expo")
    for each in facts:
        tally = tally.count(each) or tally
    return tally


def won(fact_id: str, amount: str, currency: str = "EUR") -> CampaignFact:
    return fact(FactKind.WON, fact_id, amount=Decimal(amount), currency=currency)


def lost(fact_id: str, reason: LostReason) -> CampaignFact:
    return fact(FactKind.LOST, fact_id, lost_reason=reason)


SCENARIO = (
    # four leads, one person captured again, three MQLs, one disqualified
    *(fact(FactKind.CAPTURED, f"l{n}:captured") for n in range(1, 5)),
    fact(FactKind.DUPLICATE_CAPTURE, "cmd-9:duplicate_capture"),
    *(fact(FactKind.QUALIFIED, f"l{n}:qualified") for n in range(1, 4)),
    fact(FactKind.DISQUALIFIED, "cmd-4:disqualified"),
    # sales: one won for 14,400 EUR, one lost on budget, one sent back as not a real lead
    won("deal-l1:won", "14400.00"),
    lost("deal-l2:lost", LostReason.NO_BUDGET),
    lost("deal-l3:lost", LostReason.NOT_A_REAL_LEAD),
)


def test_the_hand_worked_scenario() -> None:
    result = performance(campaign(budget="10000.00"), tally_of(*SCENARIO))
    assert (result.leads, result.duplicate_captures, result.qualified, result.disqualified) == (4, 1, 3, 1)
    assert (result.deals_won, result.deals_lost, result.not_a_real_lead) == (1, 2, 1)
    assert result.model_dump(mode="json") | {"updated_at": None} == {
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
        "updated_at": None,
    }


def test_a_fact_delivered_again_is_counted_once() -> None:
    once = tally_of(*SCENARIO)
    assert once.count(SCENARIO[-3]) is None  # the won deal again
    assert tally_of(*SCENARIO, *SCENARIO) == once


def test_a_campaign_without_results_has_nothing_to_divide_by() -> None:
    result = performance(campaign(budget="5000.00"), None)
    assert (result.leads, result.revenue) == (0, [])
    assert result.cost_per_lead is None
    assert result.cost_per_won_deal is None
    assert result.lead_to_mql is None
    assert result.mql_to_won is None
    assert result.roi == Decimal("-1.0000")  # spent and nothing back yet
    assert result.updated_at is None


def test_revenue_in_another_currency_leaves_roi_undefined_rather_than_guessed() -> None:
    tally = tally_of(
        fact(FactKind.CAPTURED, "l1:captured"),
        fact(FactKind.CAPTURED, "l2:captured"),
        won("deal-l1:won", "5000.00", "USD"),
        won("deal-l2:won", "3000.00", "EUR"),
    )
    result = performance(campaign(budget="4000.00", currency="EUR"), tally)
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
    result = performance(campaign(budget="0"), tally_of(fact(FactKind.CAPTURED, "l1:captured")))
    assert result.roi is None
    assert result.roi_note == "the campaign has no spend to return on"
    assert result.cost_per_lead is not None
    assert result.cost_per_lead.amount == Decimal("0.00")


def test_money_is_decimal_to_the_cent_rounding_half_to_even() -> None:
    tally = tally_of(
        *(fact(FactKind.CAPTURED, f"l{n}:captured") for n in range(3)),
        *(fact(FactKind.QUALIFIED, f"l{n}:qualified") for n in range(3)),
        won("d1:won", "0.10"),
        won("d2:won", "0.20"),
    )
    result = performance(campaign(budget="100.00"), tally)
    assert result.revenue[0].amount == Decimal("0.30")  # not 0.30000000000000004
    assert result.cost_per_lead is not None
    assert result.cost_per_lead.amount == Decimal("33.33")
    assert result.mql_to_won == Decimal("0.6667")
    assert result.cost_per_won_deal is not None
    assert result.cost_per_won_deal.amount == Decimal("50.00")
    halfway = performance(campaign(budget="0.25"), tally_of(*tally_facts(2))).cost_per_lead
    assert halfway is not None
    assert halfway.amount == Decimal("0.12")  # 0.125: half to even, not up


def tally_facts(leads: int) -> list[CampaignFact]:
    return [fact(FactKind.CAPTURED, f"x{n}:captured") for n in range(leads)]


def test_a_reinstated_lead_leaves_the_disqualified_count() -> None:
    tally = tally_of(
        fact(FactKind.DISQUALIFIED, "c1:disqualified"), fact(FactKind.REINSTATED, "c2:reinstated")
    )
    assert tally.disqualified == 0
    assert tally_of(fact(FactKind.REINSTATED, "c3:reinstated")).disqualified == 0


def test_the_memory_of_counted_facts_is_bounded() -> None:
    tally = tally_of(*tally_facts(MAX_REMEMBERED + 5))
    assert tally.leads == MAX_REMEMBERED + 5
    assert len(tally.counted) == MAX_REMEMBERED
    assert "x4:captured" not in tally.counted
    assert tally.count(fact(FactKind.CAPTURED, f"x{MAX_REMEMBERED + 4}:captured")) is None


def test_a_tally_survives_its_changelog_exactly() -> None:
    tally = tally_of(*SCENARIO, won("deal-l4:won", "0.10"))
    stored = tally.model_dump(mode="json")
    assert stored["revenue"] == {"EUR": "14400.10"}
    assert Tally.model_validate(stored) == tally


def test_a_won_fact_must_say_how_much() -> None:
    with pytest.raises(ValueError, match="amount"):
        Tally(campaign_id="expo").count(fact(FactKind.WON, "d:won"))
