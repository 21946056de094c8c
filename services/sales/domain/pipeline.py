"""The pipeline as a whole: which deals a list asks for, and the figures the
metrics report (open deals by stage, pipeline value, follow-up breaches)."""

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.sales.domain.assignment import UNASSIGNED
from services.sales.domain.deals import OPEN_STAGES, Deal, Stage
from services.sales.domain.follow_up import FollowUp, FollowUpStatus


def selected(
    deal: Deal,
    follow: FollowUp,
    *,
    stage: Stage | None = None,
    owner: str | None = None,
    sla: FollowUpStatus | None = None,
) -> bool:
    """Whether a deal fits a list's filters. `owner=unassigned` is the queue: open
    deals no rep owns yet."""
    if stage is not None and deal.stage is not stage:
        return False
    if owner == UNASSIGNED:
        if deal.owner is not None or deal.is_closed:
            return False
    elif owner is not None and deal.owner != owner:
        return False
    return sla is None or follow.status is sla


@dataclass
class PipelineFigures:
    open_by_stage: dict[Stage, int] = field(default_factory=lambda: dict.fromkeys(OPEN_STAGES, 0))
    # What open deals' current proposals are worth, by stage and currency.
    value: dict[tuple[Stage, str], Decimal] = field(default_factory=dict)
    # Deals (open or closed) whose first contact came late or has not come in time.
    breached: int = 0
    # Open deals still waiting for a first contact after the SLA ran out.
    overdue: int = 0
    unassigned: int = 0


# What a deal contributes to the figures (see `contribution`), by name.
OPEN = "open"
VALUE = "value"
UNASSIGNED_OPEN = "unassigned"
LATE_CONTACT = "late_contact"
AWAITING = "awaiting"  # not contacted yet, with the time its SLA runs out
AWAITING_OPEN = "awaiting_open"
# Where awaiting counts whose time ran out are summed, whatever the time was: earlier than any `now`.
PAST = datetime.min.replace(tzinfo=UTC)
# How many due times an SLA is cut into: the sums keep at most this many per kind,
# and a breach is counted at most SLA / DUE_STEPS after it happens.
DUE_STEPS = 1000


def due_step(deal: Deal, sla: timedelta) -> datetime:
    """The end of the step of time in which `deal`'s follow-up falls due (steps of
    SLA / DUE_STEPS, at least a second): deals due in the same step share one sum."""
    step = max(sla.total_seconds() / DUE_STEPS, 1.0)
    due = (deal.opened_at + sla).timestamp()
    return datetime.fromtimestamp(math.ceil(due / step) * step, UTC)


def settled(name: Hashable, now: datetime) -> Hashable:
    """The name a contribution is summed under at `now`: once its due time has
    passed, an awaiting count joins the one sum of those past due (`PAST`), so the
    sums hold a name per due step only while the step is still to come."""
    match name:
        case (str() as kind, datetime() as due) if due < now:
            return (kind, PAST)
    return name


def contribution(deal: Deal, sla: timedelta) -> dict[Hashable, Any]:
    """What `deal` adds to the pipeline figures, whatever the time: summed over deals
    as they are written, the figures at any time come from the sums alone
    (`figures_from`), without reading a deal again."""
    adds: dict[Hashable, Any] = {}
    due = due_step(deal, sla)
    if deal.first_contact_at is not None:
        adds[LATE_CONTACT] = int(deal.first_contact_at > deal.opened_at + sla)
    else:
        adds[(AWAITING, due)] = 1
    if deal.is_closed:
        return adds
    adds[(OPEN, deal.stage)] = 1
    adds[UNASSIGNED_OPEN] = int(deal.owner is None)
    if deal.first_contact_at is None:
        adds[(AWAITING_OPEN, due)] = 1
    if deal.proposal is not None:
        adds[(VALUE, deal.stage, deal.proposal.currency)] = deal.proposal.amount
    return adds


def figures_from(sums: Mapping[Hashable, Any], now: datetime) -> PipelineFigures:
    """The figures at `now` from the deals' summed contributions."""
    out = PipelineFigures()
    out.breached = sums.get(LATE_CONTACT, 0)
    out.unassigned = sums.get(UNASSIGNED_OPEN, 0)
    for name, amount in sums.items():
        match name:
            case (str() as kind, datetime() as due) if due < now:
                # Breached once the time is up without a contact; overdue while still open.
                out.breached += amount if kind == AWAITING else 0
                out.overdue += amount if kind == AWAITING_OPEN else 0
            case (str() as kind, Stage() as stage) if kind == OPEN:
                out.open_by_stage[stage] += amount
            case (str() as kind, Stage() as stage, str() as currency) if kind == VALUE:
                out.value[(stage, currency)] = out.value.get((stage, currency), Decimal(0)) + amount
    return out


def figures(deals: Iterable[Deal], now: datetime, sla: timedelta) -> PipelineFigures:
    sums: Counter[Hashable] = Counter()
    for deal in deals:
        sums.update(contribution(deal, sla))
    return figures_from(sums, now)
