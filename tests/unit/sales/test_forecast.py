"""The pipeline forecast: weighted open value by month of expected close."""

import json
from collections import Counter
from collections.abc import Hashable, Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import LostReason, Outcome
from services.sales.domain.catalog import OrderedLine, quote
from services.sales.domain.deals import Deal, Stage, close, move
from services.sales.domain.forecast import (
    DEFAULT_PLAN,
    ForecastCategory,
    add_sums,
    contribution,
    decode_sums,
    encode_sums,
    expected_close,
    forecast_from,
)
from services.sales.settings import SalesSettings
from tests.unit.sales.samples import CATALOG, T0, a_deal, at

DAY = 24 * 60


def sums_of(deals: Iterable[Deal]) -> Counter[Hashable]:
    total: Counter[Hashable] = Counter()
    for deal in deals:
        total.update(contribution(deal, DEFAULT_PLAN))
    return total


def offered(lead_id: str, stage: Stage, cores: int, minutes: float = 0) -> Deal:
    """An open deal in `stage` with `cores` x CORE (12 000.00 EUR each) on offer."""
    return move(
        a_deal(lead_id), stage, at(minutes), quote([OrderedLine(sku="CORE", quantity=cores)], CATALOG)
    )


def closed(lead_id: str, furthest: Stage, outcome: Outcome) -> Deal:
    deal = a_deal(lead_id)
    if furthest is not Stage.PROSPECTING:
        deal = move(deal, furthest, at(1))
    lines = [OrderedLine(sku="CORE", quantity=1)] if outcome is Outcome.WON else []
    reason = None if outcome is Outcome.WON else LostReason.NO_BUDGET
    return close(deal, outcome, lines=lines, lost_reason=reason, catalog=CATALOG, now=at(2))[0]


def test_the_expected_close_is_the_stage_entry_plus_its_typical_days() -> None:
    deal = offered("l1", Stage.PRESENTING, 1)
    assert expected_close(deal, DEFAULT_PLAN) == (T0 + timedelta(days=45)).date()


def test_open_value_is_weighted_by_each_stage_s_configured_probability_per_month() -> None:
    deals = [
        offered("l1", Stage.PRESENTING, 1),  # 12 000 x 0.50, expected 2026-12-17
        offered("l2", Stage.CLOSING, 2),  # 24 000 x 0.90, expected 2026-11-16
        offered("l3", Stage.CLOSING, 1, minutes=20 * DAY),  # 12 000 x 0.90, expected 2026-12-06
        a_deal("l4"),  # no proposal: counted, not valued
    ]
    out = forecast_from(sums_of(deals), T0, DEFAULT_PLAN, min_history=20)
    assert [(p.period, p.currency, p.deals, p.pipeline, p.weighted) for p in out.periods] == [
        ("2026-11", "EUR", 1, Decimal("24000.00"), Decimal("21600.00")),
        ("2026-12", "EUR", 2, Decimal("24000.00"), Decimal("16800.00")),
    ]
    december = out.periods[1].by_category
    assert december[ForecastCategory.COMMIT] == Decimal("10800.00")
    assert december[ForecastCategory.BEST_CASE] == Decimal("6000.00")
    assert december[ForecastCategory.PIPELINE] == Decimal("0.00")
    assert out.unvalued[Stage.PROSPECTING] == 1
    assert all(w.source == "configured" for w in out.stages)


def test_a_deal_past_its_expected_close_slips_into_the_current_month() -> None:
    deal = offered("l1", Stage.CLOSING, 1)  # expected 2026-11-16
    out = forecast_from(sums_of([deal]), T0 + timedelta(days=60), DEFAULT_PLAN, min_history=20)
    assert [(p.period, p.weighted) for p in out.periods] == [("2027-01", Decimal("10800.00"))]


def test_measured_conversion_replaces_the_configured_probability_once_there_is_enough_history() -> None:
    history = [
        closed("w1", Stage.CLOSING, Outcome.WON),
        closed("w2", Stage.PRESENTING, Outcome.WON),
        closed("x1", Stage.PROSPECTING, Outcome.LOST),
        closed("x2", Stage.HANDLING_OBJECTIONS, Outcome.LOST),
    ]
    open_deal = offered("l1", Stage.PRESENTING, 1)
    out = forecast_from(sums_of([*history, open_deal]), T0, DEFAULT_PLAN, min_history=3)
    by_stage = {w.stage: w for w in out.stages}
    # Reached prospecting: all four, two won. Presenting: w1, w2, x2 (skipped stages count as reached).
    assert (by_stage[Stage.PROSPECTING].closed_deals, by_stage[Stage.PROSPECTING].won) == (4, 2)
    assert by_stage[Stage.PRESENTING].measured_conversion == Decimal("0.6667")
    assert (by_stage[Stage.PRESENTING].probability, by_stage[Stage.PRESENTING].source) == (
        Decimal("0.6667"),
        "measured",
    )
    # Closing: one deal reached it, under min_history: still the configured 0.90.
    assert (by_stage[Stage.CLOSING].probability, by_stage[Stage.CLOSING].source) == (
        Decimal("0.90"),
        "configured",
    )
    assert out.periods[0].weighted == Decimal("8000.40")  # 12 000 x 0.6667


def test_sums_travel_between_workers_as_json_and_add_up() -> None:
    one = sums_of([offered("l1", Stage.CLOSING, 1), closed("w1", Stage.CLOSING, Outcome.WON)])
    two = sums_of([offered("l2", Stage.CLOSING, 1), a_deal("l3")])
    wire = [decode_sums(json.loads(json.dumps(encode_sums(share)))) for share in (one, two)]
    assert add_sums(*wire) == add_sums(one, two)
    out = forecast_from(add_sums(*wire), T0, DEFAULT_PLAN, min_history=20)
    assert out.periods[0].pipeline == Decimal("24000.00")


def test_a_stage_s_plan_is_configurable_and_the_others_keep_their_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan: Any = '{"closing": {"probability": "0.8", "category": "commit", "days_to_close": 7}}'
    monkeypatch.setenv("LEADFLOW_FORECAST_PLAN", plan)
    settings = SalesSettings()
    assert settings.forecast_plan[Stage.CLOSING].probability == Decimal("0.8")
    assert settings.forecast_plan[Stage.PRESENTING] == DEFAULT_PLAN[Stage.PRESENTING]
    monkeypatch.setenv(
        "LEADFLOW_FORECAST_PLAN", '{"won": {"probability": "1", "category": "commit", "days_to_close": 0}}'
    )
    with pytest.raises(ValidationError):
        SalesSettings()
