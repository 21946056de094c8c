"""The pipeline forecast: what the open deals are likely to bring in, by month of
expected close.

Each open deal with a proposal counts its proposal's amount, weighted by the
chance that a deal in its stage is won. That chance is the stage's configured
probability (as in Salesforce's stage probabilities) until the deals closed so far
say otherwise: once at least `min_history` closed deals reached a stage, the
measured conversion from that stage to won replaces it. A deal "reached" a stage
if it got that far in the process, whether it visited the stage or skipped it.

A deal holds no expected close date (reps do not enter one): it is derived as the
time the deal entered its stage plus the typical number of days from that stage to
a close (configured per stage). A deal past that date is expected this month, not
in the past: it slipped, it did not close. Deals with no proposal yet have no value
to forecast; they are counted, not valued.

The figures are sums kept as deals are written (`contribution`, summed by each
worker over its partitions, see services/runtime/tallies.py): a forecast reads a
few hundred numbers per worker, never the deals.
"""

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from services.sales.domain.deals import OPEN_STAGES, Deal, Stage


class ForecastCategory(StrEnum):
    """Salesforce's forecast categories for open deals."""

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"


class StagePlan(BaseModel):
    """What sales assumes of a deal in one stage until history says otherwise."""

    probability: Decimal = Field(ge=0, le=1, description="The chance a deal in this stage is won")
    category: ForecastCategory
    days_to_close: int = Field(ge=0, description="Typical days from entering this stage to the close")


DEFAULT_PLAN: dict[Stage, StagePlan] = {
    Stage.PROSPECTING: StagePlan(
        probability=Decimal("0.10"), category=ForecastCategory.PIPELINE, days_to_close=90
    ),
    Stage.QUALIFYING: StagePlan(
        probability=Decimal("0.20"), category=ForecastCategory.PIPELINE, days_to_close=60
    ),
    Stage.PRESENTING: StagePlan(
        probability=Decimal("0.50"), category=ForecastCategory.BEST_CASE, days_to_close=45
    ),
    Stage.HANDLING_OBJECTIONS: StagePlan(
        probability=Decimal("0.70"), category=ForecastCategory.BEST_CASE, days_to_close=30
    ),
    Stage.CLOSING: StagePlan(probability=Decimal("0.90"), category=ForecastCategory.COMMIT, days_to_close=14),
}

CENT = Decimal("0.01")
RATE = Decimal("0.0001")

# What a deal contributes, by name.
OPEN_VALUE = "forecast_value"  # (name, stage, month, currency) -> proposal amount
OPEN_COUNT = "forecast_deals"  # (name, stage, month, currency) -> 1
UNVALUED = "forecast_unvalued"  # (name, stage) -> 1: open, no proposal yet
REACHED = "forecast_reached"  # (name, stage, won) -> 1: closed deals that got that far


def expected_close(deal: Deal, plan: Mapping[Stage, StagePlan]) -> date:
    """When `deal` is expected to close, before any slip to the current month."""
    return (deal.stage_entered_at + timedelta(days=plan[deal.stage].days_to_close)).date()


def contribution(deal: Deal, plan: Mapping[Stage, StagePlan]) -> dict[Hashable, Any]:
    """What `deal` adds to the forecast's sums, whatever the time."""
    if deal.is_closed:
        furthest = max(
            (OPEN_STAGES.index(v.stage) for v in deal.history if v.stage in OPEN_STAGES), default=0
        )
        won = deal.stage is Stage.WON
        return {(REACHED, stage, won): 1 for stage in OPEN_STAGES[: furthest + 1]}
    if deal.proposal is None:
        return {(UNVALUED, deal.stage): 1}
    month = expected_close(deal, plan).strftime("%Y-%m")
    currency = deal.proposal.currency
    return {
        (OPEN_VALUE, deal.stage, month, currency): deal.proposal.amount,
        (OPEN_COUNT, deal.stage, month, currency): 1,
    }


class StageWeight(BaseModel):
    stage: Stage
    category: ForecastCategory
    configured_probability: Decimal
    closed_deals: int = Field(description="Closed deals that reached this stage")
    won: int = Field(description="Of those, won")
    measured_conversion: Decimal | None = Field(description="won / closed_deals; null with no closed deal")
    probability: Decimal = Field(description="The weight used: measured once there is enough history")
    source: str = Field(description="'measured' or 'configured'")
    days_to_close: int


class PeriodForecast(BaseModel):
    period: str = Field(description="Month of expected close, YYYY-MM")
    currency: str
    deals: int
    pipeline: Decimal = Field(description="Open proposals' value, unweighted")
    weighted: Decimal = Field(description="Open proposals' value weighted by their stage's probability")
    by_category: dict[ForecastCategory, Decimal] = Field(description="Weighted value by forecast category")


class Forecast(BaseModel):
    as_of: datetime
    periods: list[PeriodForecast]
    stages: list[StageWeight]
    unvalued: dict[Stage, int] = Field(
        description="Open deals with no proposal yet, by stage: counted, not valued"
    )
    min_history: int


def weights(
    sums: Mapping[Hashable, Any], plan: Mapping[Stage, StagePlan], min_history: int
) -> list[StageWeight]:
    out = []
    for stage in OPEN_STAGES:
        won, lost = sums.get((REACHED, stage, True), 0), sums.get((REACHED, stage, False), 0)
        closed = won + lost
        measured = (Decimal(won) / Decimal(closed)).quantize(RATE) if closed else None
        use_measured = measured is not None and closed >= min_history
        configured = plan[stage].probability
        out.append(
            StageWeight(
                stage=stage,
                category=plan[stage].category,
                configured_probability=configured,
                closed_deals=closed,
                won=won,
                measured_conversion=measured,
                probability=measured if use_measured and measured is not None else configured,
                source="measured" if use_measured else "configured",
                days_to_close=plan[stage].days_to_close,
            )
        )
    return out


@dataclass
class _Period:
    deals: int = 0
    pipeline: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)


def forecast_from(
    sums: Mapping[Hashable, Any], now: datetime, plan: Mapping[Stage, StagePlan], min_history: int
) -> Forecast:
    """The forecast at `now` from the deals' summed contributions."""
    stage_weights = weights(sums, plan, min_history)
    weight = {w.stage: w.probability for w in stage_weights}
    this_month = now.strftime("%Y-%m")
    periods: dict[tuple[str, str], _Period] = {}
    categories: dict[tuple[str, str], dict[ForecastCategory, Decimal]] = {}
    unvalued = dict.fromkeys(OPEN_STAGES, 0)
    for name, amount in sums.items():
        match name:
            case (str() as kind, Stage() as stage, str() as month, str() as currency) if kind in (
                OPEN_VALUE,
                OPEN_COUNT,
            ):
                key = (max(month, this_month), currency)  # past its date: slipped into this month
                period = periods.setdefault(key, _Period())
                if kind == OPEN_COUNT:
                    period.deals += amount
                    continue
                weighted = amount * weight[stage]
                period.pipeline += amount
                period.weighted += weighted
                by = categories.setdefault(key, dict.fromkeys(ForecastCategory, Decimal(0)))
                by[plan[stage].category] += weighted
            case (str() as kind, Stage() as stage) if kind == UNVALUED:
                unvalued[stage] += amount
    return Forecast(
        as_of=now,
        periods=[
            PeriodForecast(
                period=month,
                currency=currency,
                deals=period.deals,
                pipeline=period.pipeline.quantize(CENT, ROUND_HALF_EVEN),
                weighted=period.weighted.quantize(CENT, ROUND_HALF_EVEN),
                by_category={
                    c: v.quantize(CENT, ROUND_HALF_EVEN) for c, v in categories[(month, currency)].items()
                },
            )
            for (month, currency), period in sorted(periods.items())
            if period.deals
        ],
        stages=stage_weights,
        unvalued=unvalued,
        min_history=min_history,
    )


def encode_sums(sums: Mapping[Hashable, Any]) -> list[list[Any]]:
    """A worker's forecast sums as JSON for the worker adding them up: [name..., value]."""
    out: list[list[Any]] = []
    for name, value in sums.items():
        if isinstance(name, tuple) and name and name[0] in (OPEN_VALUE, OPEN_COUNT, UNVALUED, REACHED):
            out.append([*name, format(value, "f") if isinstance(value, Decimal) else value])
    return out


def decode_sums(rows: list[list[Any]]) -> dict[Hashable, Any]:
    sums: dict[Hashable, Any] = {}
    for *name, value in rows:
        kind, stage, *rest = name
        key = (kind, Stage(stage), *rest)
        sums[key] = Decimal(value) if kind == OPEN_VALUE else int(value)
    return sums


def add_sums(*shares: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
    total: dict[Hashable, Any] = {}
    for share in shares:
        for name, value in share.items():
            total[name] = total.get(name, 0) + value
    return total
