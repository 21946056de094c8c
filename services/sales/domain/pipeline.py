"""The pipeline as a whole: which deals a list asks for, and the figures the
metrics report (open deals by stage, pipeline value, follow-up breaches)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from services.sales.domain.assignment import UNASSIGNED
from services.sales.domain.deals import OPEN_STAGES, Deal, Stage
from services.sales.domain.follow_up import FollowUp, FollowUpStatus, follow_up


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


def figures(deals: Iterable[Deal], now: datetime, sla: timedelta) -> PipelineFigures:
    out = PipelineFigures()
    for deal in deals:
        follow = follow_up(deal, now, sla)
        out.breached += follow.breached
        if deal.is_closed:
            continue
        out.open_by_stage[deal.stage] += 1
        out.overdue += follow.overdue
        out.unassigned += deal.owner is None
        if deal.proposal is not None:
            key = (deal.stage, deal.proposal.currency)
            out.value[key] = out.value.get(key, Decimal(0)) + deal.proposal.amount
    return out
