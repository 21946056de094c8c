"""Sales' business metrics. Labels are bounded sets (stage, outcome, reason,
currency, and rep ids from the roster), never a deal or lead id.

Counters and histograms count what this worker did. Gauges of state (open deals
by stage, pipeline value, follow-up breaches) come from sums kept as deals are
written (services/runtime/tallies.py, domain/pipeline.py `contribution`), so a
scrape reads no deal; each worker sums the partitions it owns, rebuilt once after
a rebalance: summed over workers they give the service's figure, and a rebalance
neither loses nor double counts.

Rep load, capacity and the closed counts come from the assignment desks (one per
pool of reps, see domain/assignment.py), each of which sees every deal of its
reps whatever their partition: each worker reports the desks it holds. A rep
belongs to one desk, so the rep gauges keep their `rep` label alone; the desk
figures are labelled `desk` (its key, a bounded set from the roster), and summed
over desks they give the service's: the win rate is
sum(closed{outcome="won"}) / sum(closed).
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.sales.domain.assignment import Desk, Roster
from services.sales.domain.pipeline import PipelineFigures

log = logging.getLogger(__name__)

_DURATION_BUCKETS = (
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    8 * 3600.0,
    24 * 3600.0,
    2 * 86400.0,
    7 * 86400.0,
    14 * 86400.0,
    30 * 86400.0,
    90 * 86400.0,
)

DEALS_OPENED = Counter("leadflow_sales_deals_opened", "Deals opened from qualified leads.")
ASSIGNMENTS = Counter(
    "leadflow_sales_assignments",
    "Assignment decisions applied to deals: to a rep, or to the unassigned queue.",
    ["result"],
)
STAGE_MOVES = Counter("leadflow_sales_stage_moves", "Deals moved into a stage.", ["stage"])
TIME_IN_STAGE = Histogram(
    "leadflow_sales_time_in_stage_seconds",
    "How long deals stayed in a stage, observed when they leave it.",
    ["stage"],
    buckets=_DURATION_BUCKETS,
)
FIRST_CONTACTS = Counter(
    "leadflow_sales_first_contacts",
    "First contacts with deals, by whether they met the follow-up SLA.",
    ["follow_up"],
)
TIME_TO_FIRST_CONTACT = Histogram(
    "leadflow_sales_time_to_first_contact_seconds",
    "From a deal being opened to its first contact.",
    buckets=_DURATION_BUCKETS,
)
DEALS_CLOSED = Counter(
    "leadflow_sales_deals_closed", "Deals closed, by outcome and lost reason.", ["outcome", "lost_reason"]
)
WON_VALUE = Counter(
    "leadflow_sales_won_value", "Amount of won deals, in the currency labelled.", ["currency"]
)


@dataclass
class DeskFigures:
    key: str
    desk: Desk
    roster: Roster


class StateCollector(Collector):
    """Gauges read from state when scraped (see the module docstring)."""

    def __init__(
        self, pipeline: Callable[[], PipelineFigures], desks: Callable[[], list[DeskFigures]]
    ) -> None:
        self._pipeline = pipeline
        self._desks = desks

    def describe(self) -> Iterator[Metric]:
        return iter(_families())

    def collect(self) -> Iterator[Metric]:
        try:
            figures, desks = self._pipeline(), self._desks()
        except Exception:  # a scrape must still answer with every other metric
            log.warning(
                "sales state not readable for metrics (worker starting or rebalancing)", exc_info=True
            )
            return iter(())
        open_deals, value, breached, overdue, unassigned, load, capacity, win_rate, closed, queued = (
            _families()
        )
        for stage, count in figures.open_by_stage.items():
            open_deals.add_metric([stage.value], count)
        for (stage, currency), amount in sorted(figures.value.items()):
            value.add_metric([stage.value, currency], float(amount))
        breached.add_metric([], figures.breached)
        overdue.add_metric([], figures.overdue)
        unassigned.add_metric([], figures.unassigned)
        families = [open_deals, value, breached, overdue, unassigned]
        for desk in desks:
            pool = desk.roster.pool(desk.key)
            for rep in pool.reps if pool is not None else ():
                load.add_metric([rep.rep_id], desk.desk.load(rep.rep_id).open)
                capacity.add_metric([rep.rep_id], rep.capacity)
            closed.add_metric([desk.key, "won"], desk.desk.won)
            closed.add_metric([desk.key, "lost"], desk.desk.lost)
            queued.add_metric([desk.key], desk.desk.waiting)
            if desk.desk.win_rate is not None:
                win_rate.add_metric([desk.key], desk.desk.win_rate)
        if desks:
            families += [load, capacity, closed, queued]
        if win_rate.samples:
            families.append(win_rate)
        return iter(families)


def _families() -> list[GaugeMetricFamily]:
    return [
        GaugeMetricFamily("leadflow_sales_open_deals", "Open deals by stage.", labels=["stage"]),
        GaugeMetricFamily(
            "leadflow_sales_pipeline_value",
            "What open deals' current proposals are worth, by stage, in the currency labelled.",
            labels=["stage", "currency"],
        ),
        GaugeMetricFamily(
            "leadflow_sales_sla_breached_deals",
            "Deals whose first contact came after the follow-up SLA, or has not come and is overdue"
            " (counted within a thousandth of the SLA, at least 1 s, of falling due).",
        ),
        GaugeMetricFamily(
            "leadflow_sales_sla_overdue_deals",
            "Open deals still waiting for their first contact after the follow-up SLA ran out"
            " (counted within a thousandth of the SLA, at least 1 s, of falling due).",
        ),
        GaugeMetricFamily("leadflow_sales_unassigned_deals", "Open deals no rep owns yet."),
        GaugeMetricFamily("leadflow_sales_rep_open_deals", "Open deals each rep owns.", labels=["rep"]),
        GaugeMetricFamily(
            "leadflow_sales_rep_capacity_deals", "Open deals each rep may own.", labels=["rep"]
        ),
        GaugeMetricFamily(
            "leadflow_sales_win_rate_ratio",
            "Won deals over all closed deals of an assignment desk (0 to 1).",
            labels=["desk"],
        ),
        GaugeMetricFamily(
            "leadflow_sales_desk_closed_deals",
            "Deals an assignment desk saw closed, by outcome (the service's win rate: won over all).",
            labels=["desk", "outcome"],
        ),
        GaugeMetricFamily(
            "leadflow_sales_desk_queued_deals",
            "Deals waiting in an assignment desk's queue.",
            labels=["desk"],
        ),
    ]


def watch(pipeline: Callable[[], PipelineFigures], desks: Callable[[], list[DeskFigures]]) -> None:
    REGISTRY.register(StateCollector(pipeline, desks))
