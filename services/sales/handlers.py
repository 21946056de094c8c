"""Sales' use cases: events and commands in, tables changed through the pure
domain, deal.updated, deal.closed and assignment requests out.

Every change to a deal after it is opened is a command, applied one at a time
per partition by the command agent, the desk's decisions included: a close and
an assignment of the same deal never interleave."""

import logging
from typing import Any

from pydantic import BaseModel

from schemas.envelope import CloudEvent
from schemas.events import DealClosed, LeadQualified, Outcome
from services.runtime.errors import NotFound
from services.runtime.tallies import Settling, Tally
from services.sales import metrics, topics
from services.sales.app import catalog, clock, deals, desk, placements, queue, roster, runtime, settings
from services.sales.commands import AssignDeal, CloseDeal, MoveStage, RecordContact, RecordObjection
from services.sales.domain import assignment, forecast
from services.sales.domain import deals as pipeline
from services.sales.domain.assignment import Desk, DeskRequest, DrainDesk, PlaceDeal, ReleaseDeal
from services.sales.domain.catalog import quote
from services.sales.domain.deals import Assignment, Deal
from services.sales.domain.follow_up import follow_up
from services.sales.domain.pipeline import PipelineFigures, contribution, figures_from, settled

log = logging.getLogger(__name__)

# -- deals ------------------------------------------------------------------


async def on_lead_qualified(event: CloudEvent[LeadQualified]) -> None:
    qualified = event.data
    deal = deals.get(qualified.lead_id)
    if deal is None:
        deal = pipeline.open_deal(qualified, now=clock.now())
        await _announce_update(None, deal)
        deals[deal.lead_id] = deal
        metrics.DEALS_OPENED.inc()
    elif deal.assignment is Assignment.PENDING:
        # Redelivered before the desk decided: the opening may not have reached the
        # broker either; announced again from the stored deal, the same event.
        await _announce_update(None, deal)
    if deal.assignment is Assignment.PENDING:
        # Stored first, asked second: a redelivery finds the deal pending and
        # asks again, which the desk answers with the same decision.
        country = deal.company.country
        await _to_desk(
            PlaceDeal(
                desk=roster.desk_key(country),
                lead_id=deal.lead_id,
                country=country,
                requested_at=deal.opened_at,
            )
        )


async def assign_deal(command: AssignDeal) -> Deal:
    deal = deals.get(command.lead_id)
    if deal is None:
        # Not a refusal to answer but a record that must not vanish: to the DLQ.
        raise LookupError(f"assignment decision for {command.lead_id!r}, which has no deal")
    assigned = pipeline.assign(deal, command.owner, command.decided_at)
    if assigned != deal:
        await _announce_update(deal, assigned)
        deals[assigned.lead_id] = assigned
        metrics.ASSIGNMENTS.labels(result=assigned.assignment).inc()
    return assigned


def _deal(lead_id: str) -> Deal:
    deal = deals.get(lead_id)
    if deal is None:
        raise NotFound(f"no deal {pipeline.deal_id_for(lead_id)!r}")
    return deal


async def _announce_update(before: Deal | None, after: Deal) -> None:
    """deal.updated for what changed between `before` and `after`, if anything a
    subscriber follows did. Sent before the deal is stored: a crash in between
    redelivers the command, which announces again under the same id."""
    update = pipeline.updated_event(before, after, settings.follow_up_sla)
    if update is not None:
        event, once = update
        await runtime.publisher.publish(event, subject=after.lead_id, at=event.updated_at, once_per=once)


async def _save(before: Deal, after: Deal) -> Deal:
    await _announce_update(before, after)
    deals[after.lead_id] = after
    if after.stage is not before.stage and after.last_left is not None:
        metrics.STAGE_MOVES.labels(stage=after.stage).inc()
        left = after.last_left
        metrics.TIME_IN_STAGE.labels(stage=left.stage).observe(left.seconds(after.stage_entered_at))
    if before.first_contact_at is None and after.first_contact_at is not None:
        status = follow_up(after, after.first_contact_at, settings.follow_up_sla).status
        metrics.FIRST_CONTACTS.labels(follow_up=status).inc()
        metrics.TIME_TO_FIRST_CONTACT.observe((after.first_contact_at - after.opened_at).total_seconds())
    return after


async def move_stage(command: MoveStage) -> Deal:
    deal = _deal(command.lead_id)
    if deal.stage is command.stage:
        # Moved already: the move may have been stored while its deal.updated was still
        # in the producer's buffer when the worker died. Announce it again (identical,
        # from the stored deal), then refuse as before.
        again = pipeline.last_update(deal, settings.follow_up_sla)
        if again is not None:
            await runtime.publisher.publish(
                again[0], subject=deal.lead_id, at=again[0].updated_at, once_per=again[1]
            )
    proposal = None if command.proposal is None else quote(command.proposal, catalog, field="proposal")
    moved = await _save(deal, pipeline.move(deal, command.stage, clock.now(), proposal, by=command.by))
    log.info("deal moved", extra={"deal_id": deal.deal_id, "stage": command.stage, "by": command.by})
    return moved


async def record_objection(command: RecordObjection) -> Deal:
    deal = _deal(command.lead_id)
    recorded = pipeline.record_objection(
        deal, command.objection, command.resolution, clock.now(), by=command.by
    )
    log.info("objection recorded", extra={"deal_id": deal.deal_id, "by": command.by})
    return await _save(deal, recorded)


async def record_contact(command: RecordContact) -> Deal:
    deal = _deal(command.lead_id)
    recorded = pipeline.record_contact(deal, command.channel, command.note, clock.now(), by=command.by)
    log.info("contact recorded", extra={"deal_id": deal.deal_id, "by": command.by})
    return await _save(deal, recorded)


async def close_deal(command: CloseDeal) -> Deal:
    deal = _deal(command.lead_id)
    if deal.is_closed:
        # Closed already. The close may have been stored while its deal.closed and
        # the desk's release were still in the producer's buffer when the worker
        # died: other partitions, nothing sends them before the changelog write.
        # The command comes again; send both again, identical, then refuse.
        await _announce(deal, pipeline.closed_event(deal))
    closed, event = pipeline.close(
        deal,
        command.outcome,
        lines=command.lines,
        lost_reason=command.lost_reason,
        catalog=catalog,
        now=clock.now(),
        by=command.by,
    )
    # Announced before stored: a crash in between redelivers the command, which
    # then closes and announces again rather than never.
    await _announce(closed, event)
    await _save(deal, closed)
    log.info("deal closed", extra={"deal_id": deal.deal_id, "outcome": event.outcome, "by": command.by})
    metrics.DEALS_CLOSED.labels(outcome=event.outcome, lost_reason=event.lost_reason or "none").inc()
    if event.outcome is Outcome.WON:
        metrics.WON_VALUE.labels(currency=event.currency).inc(float(event.amount))
    return closed


async def _announce(closed: Deal, event: DealClosed) -> None:
    """deal.closed out, and the release to the desk of the deal's country (the one
    that placed it, unless the roster regrouped), which releases once."""
    await runtime.publisher.publish(event, subject=closed.lead_id, at=event.closed_at, once_per=event.deal_id)
    key = roster.desk_key(closed.company.country)
    await _to_desk(ReleaseDeal(desk=key, lead_id=closed.lead_id, outcome=event.outcome, at=event.closed_at))


async def handle(command: Any) -> Any:
    match command:
        case MoveStage():
            return await move_stage(command)
        case RecordObjection():
            return await record_objection(command)
        case RecordContact():
            return await record_contact(command)
        case CloseDeal():
            return await close_deal(command)
        case AssignDeal():
            return await assign_deal(command)
    raise TypeError(f"unknown command {command!r}")


# -- the assignment desk (see domain/assignment.py) ----------------------------


async def on_desk_request(request: DeskRequest) -> None:
    """One request of one desk; every table it writes goes to the partition of the
    desk key being processed (its keys all start with that key)."""
    key = request.desk
    book = desk.get(key) or Desk()
    now = clock.now()
    match request:
        case PlaceDeal():
            change = assignment.place(book, roster, request, placements=placements, queue=queue, now=now)
        case ReleaseDeal():
            change = assignment.release(book, roster, request, placements=placements, queue=queue, now=now)
        case DrainDesk():
            change = assignment.drain(book, roster, request, placements=placements, queue=queue, now=now)
    # Decisions go out before the state is stored: the desk decides the same
    # again if it dies in between and the request comes back. If the state got
    # stored and the decisions did not reach the broker, the request that comes
    # again sends them again from that state (see domain/assignment.py).
    for decision in change.decisions:
        command = AssignDeal(lead_id=decision.lead_id, owner=decision.owner, decided_at=decision.decided_at)
        await _send(topics.commands.topic, decision.lead_id, command)
    if change.more:
        await _to_desk(assignment.go_on(request))
    for entry_key, entry in change.queue.items():
        queue[entry_key] = entry
    for placement_key, placement in change.placements.items():
        placements[placement_key] = placement
    if change.desk != book:
        desk[key] = change.desk
    # Deleted last: a desk that dies before storing finds the entries it took again.
    for entry_key in change.dequeued:
        del queue[entry_key]


async def _to_desk(request: PlaceDeal | ReleaseDeal | DrainDesk) -> None:
    await _send(topics.assignment_requests, request.desk, request)


async def _send(topic: Any, key: str, value: BaseModel) -> None:
    await topic.send(key=key.encode(), value=value.model_dump_json().encode())


# -- reads ------------------------------------------------------------------------


def local_desks() -> list[tuple[str, Desk]]:
    """The desks of the roster whose partitions this worker owns, with their state."""
    return [(key, book) for key, book in runtime.cluster.local_items(desk) if roster.pool(key) is not None]


# Kept as deals are written: a scrape reads sums, not the deals table.
PIPELINE = Tally(
    runtime.cluster,
    deals,
    lambda deal: contribution(deal, settings.follow_up_sla),
    settling=Settling(settled, clock.now),
)


# The forecast's sums, kept the same way (see domain/forecast.py).
FORECAST = Tally(runtime.cluster, deals, lambda deal: forecast.contribution(deal, settings.forecast_plan))


def pipeline_figures() -> PipelineFigures:
    return figures_from(PIPELINE.totals(), clock.now())


def desk_figures() -> list[metrics.DeskFigures]:
    return [metrics.DeskFigures(key=key, desk=book, roster=roster) for key, book in local_desks()]


metrics.watch(pipeline_figures, desk_figures)
