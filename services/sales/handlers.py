"""Sales' use cases: commands and events in, tables changed through the pure
domain, deal.closed out."""

from datetime import UTC, datetime
from typing import Any

from schemas.envelope import CloudEvent
from schemas.events import LeadQualified
from services.runtime.errors import NotFound
from services.sales import metrics
from services.sales.app import catalog, deals, runtime
from services.sales.commands import CloseDeal, MoveStage, RecordObjection
from services.sales.domain import deals as pipeline
from services.sales.domain.deals import Deal


def now() -> datetime:
    return datetime.now(UTC)


async def on_lead_qualified(event: CloudEvent[LeadQualified]) -> None:
    qualified = event.data
    if qualified.lead_id in deals:
        return  # delivered again: the deal exists already
    deals[qualified.lead_id] = pipeline.open_deal(qualified, owner=None, now=now())
    metrics.DEALS_OPENED.inc()


def _deal(lead_id: str) -> Deal:
    deal = deals.get(lead_id)
    if deal is None:
        raise NotFound(f"no deal {pipeline.deal_id_for(lead_id)!r}")
    return deal


async def move_stage(command: MoveStage) -> Deal:
    deal = pipeline.move(_deal(command.lead_id), command.stage, now())
    deals[deal.lead_id] = deal
    metrics.STAGE_MOVES.labels(stage=deal.stage).inc()
    return deal


async def record_objection(command: RecordObjection) -> Deal:
    deal = pipeline.record_objection(_deal(command.lead_id), command.objection, command.resolution, now())
    deals[deal.lead_id] = deal
    return deal


async def close_deal(command: CloseDeal) -> Deal:
    deal, closed = pipeline.close(
        _deal(command.lead_id),
        command.outcome,
        lines=command.lines,
        lost_reason=command.lost_reason,
        catalog=catalog,
        now=now(),
    )
    # Publish before storing: a crash in between redelivers the command, which
    # publishes again rather than never.
    await runtime.publisher.publish(closed, subject=deal.lead_id)
    deals[deal.lead_id] = deal
    metrics.DEALS_CLOSED.labels(outcome=closed.outcome, lost_reason=closed.lost_reason or "none").inc()
    return deal


async def handle(command: Any) -> Any:
    match command:
        case MoveStage():
            return await move_stage(command)
        case RecordObjection():
            return await record_objection(command)
        case CloseDeal():
            return await close_deal(command)
    raise TypeError(f"unknown command {command!r}")
