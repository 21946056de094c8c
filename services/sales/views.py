"""Sales' HTTP API: route to the deal's owner, send a command, answer."""

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request

from services.runtime.errors import NotFound
from services.runtime.refusals import documented
from services.sales.app import catalog, clock, deals, desk, roster, runtime, settings
from services.sales.commands import CloseDeal, MoveStage, RecordContact, RecordObjection
from services.sales.domain.assignment import DESK_KEY, Desk
from services.sales.domain.deals import Deal, Stage, lead_id_of
from services.sales.domain.follow_up import FollowUpStatus
from services.sales.domain.pipeline import selected
from services.sales.handlers import local_deals
from services.sales.models import (
    ClockAdvance,
    ClockView,
    CloseRequest,
    ContactRequest,
    DealView,
    MoveRequest,
    ObjectionRequest,
    RepsView,
    RepView,
)
from services.sales.topics import commands

refusals = documented(
    {
        404: "No such deal",
        409: "The deal is not where the request needs it: an impossible move, a second close",
    }
)


# Every write to a deal: not JSON, no such deal, not in a state that allows it.
WRITE = refusals(400, 404, 409)

router = APIRouter(tags=["sales"], responses=refusals(503))
cluster = runtime.cluster


def _view(deal: Deal) -> DealView:
    return DealView.of(deal, clock.now(), settings.follow_up_sla)


async def _owned_lead_id(deal_id: str, request: Request) -> str:
    lead_id = lead_id_of(deal_id)
    if lead_id is None:
        raise NotFound(f"no deal {deal_id!r}")
    await cluster.ensure_local(request, deals, lead_id)
    return lead_id


@router.get("/deals", summary="Deals, filtered; owner=unassigned lists the unassigned queue")
async def list_deals(
    request: Request,
    lead_id: str | None = None,
    stage: Stage | None = None,
    owner: str | None = None,
    sla: FollowUpStatus | None = None,
) -> dict[str, Any]:
    if lead_id is not None:
        await cluster.ensure_local(request, deals, lead_id)
        found = deals.get(lead_id)
        local = [found] if found else []
    else:
        local = local_deals()
    views = [_view(deal) for deal in local]
    items = [
        view.model_dump(mode="json")
        for view in views
        if selected(view, view.follow_up, stage=stage, owner=owner, sla=sla)
    ]
    if lead_id is None:
        items += await cluster.gather(request, deals)
    return {"items": sorted(items, key=lambda d: (d["opened_at"], d["deal_id"]))}


@router.get("/deals/{deal_id}", responses=refusals(404))
async def get_deal(deal_id: str, request: Request) -> DealView:
    deal = deals.get(await _owned_lead_id(deal_id, request))
    if deal is None:
        raise NotFound(f"no deal {deal_id!r}")
    return _view(deal)


@router.post("/deals/{deal_id}/stage", responses=WRITE)
async def move_stage(deal_id: str, body: MoveRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    command = MoveStage(lead_id=lead_id, stage=body.stage, proposal=body.proposal)
    deal: Deal = await commands.ask(command)
    return _view(deal)


@router.post("/deals/{deal_id}/objections", responses=WRITE)
async def record_objection(deal_id: str, body: ObjectionRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    deal: Deal = await commands.ask(RecordObjection(lead_id=lead_id, **body.model_dump()))
    return _view(deal)


@router.post(
    "/deals/{deal_id}/contacts",
    summary="Record a contact with the lead (a call, an email...)",
    responses=WRITE,
)
async def record_contact(deal_id: str, body: ContactRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    deal: Deal = await commands.ask(RecordContact(lead_id=lead_id, **body.model_dump()))
    return _view(deal)


@router.post("/deals/{deal_id}/close", responses=WRITE)
async def close_deal(deal_id: str, body: CloseRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    command = CloseDeal(lead_id=lead_id, outcome=body.outcome, lines=body.lines, lost_reason=body.lost_reason)
    deal: Deal = await commands.ask(command)
    return _view(deal)


@router.get("/catalog")
async def get_catalog() -> dict[str, Any]:
    """The catalogue's products (inactive ones included, flagged), its version,
    currency and the largest discount a rep may give."""
    return {
        "version": catalog.version,
        "currency": catalog.currency,
        "max_discount_percent": catalog.max_discount_percent,
        "items": catalog.products,
    }


@router.get("/reps")
async def list_reps(request: Request) -> RepsView:
    """Each rep's territories, capacity and load; answered by the worker holding the
    assignment desk, which knows every rep's load."""
    await cluster.ensure_local(request, desk, DESK_KEY)
    book = desk.get(DESK_KEY) or Desk()
    return RepsView(
        items=[RepView.of(rep, book) for rep in roster.reps],
        unassigned=len(book.queue),
        win_rate=book.win_rate,
        roster_version=roster.version,
    )


runtime.api.include_router(router)

if settings.clock_control:
    # Tests only (LEADFLOW_CLOCK_CONTROL): lets time pass on this worker.
    @runtime.api.get("/clock", tags=["testing"])
    async def read_clock() -> ClockView:
        return ClockView(now=clock.now(), offset_seconds=clock.offset.total_seconds())

    @runtime.api.post("/clock", tags=["testing"], summary="Move this worker's clock forward")
    async def advance_clock(body: ClockAdvance) -> ClockView:
        now = clock.advance(timedelta(seconds=body.seconds))
        return ClockView(now=now, offset_seconds=clock.offset.total_seconds())
