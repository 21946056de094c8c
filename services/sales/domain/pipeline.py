"""The pipeline as a whole: which deals a list asks for, and the figures the
metrics report (open deals by stage, pipeline value, follow-up breaches)."""

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


def contribution(deal: Deal, sla: timedelta) -> dict[Hashable, Any]:
    """What `deal` adds to the pipeline figures, whatever the time: summed over deals
    as they are written, the figures at any time come from the sums alone
    (`figures_from`), without reading a deal again."""
    adds: dict[Hashable, Any] = {}
    due = deal.opened_at + sla
    if deal.first_contact_at is not None:
        adds[LATE_CONTACT] = int(deal.first_contact_at > due)
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
