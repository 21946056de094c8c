"""Sales' HTTP API: route to the deal's owner, send a command, answer."""

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.middleware.cors import CORSMiddleware

from services.runtime.auth import subject_of
from services.runtime.cluster import Unavailable
from services.runtime.errors import NotFound
from services.runtime.pages import Page, PageQuery, page_query
from services.runtime.refusals import documented
from services.sales.app import catalog, clock, deals, desk, roster, runtime, settings
from services.sales.commands import CloseDeal, MoveStage, RecordContact, RecordObjection
from services.sales.domain.assignment import Desk, Pool
from services.sales.domain.deals import Deal, Stage, lead_id_of
from services.sales.domain.follow_up import FollowUpStatus
from services.sales.domain.forecast import Forecast, add_sums, decode_sums, encode_sums, forecast_from
from services.sales.domain.pipeline import selected
from services.sales.handlers import FORECAST
from services.sales.models import (
    ClockAdvance,
    ClockView,
    CloseRequest,
    ContactRequest,
    DealView,
    DeskView,
    ForecastShare,
    MoveRequest,
    ObjectionRequest,
    RepsView,
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

router = APIRouter(tags=["sales"], responses=refusals(401, 403, 503))
cluster = runtime.cluster


def _view(deal: Deal) -> DealView:
    return DealView.of(deal, clock.now(), settings.follow_up_sla)


async def _owned_lead_id(deal_id: str, request: Request) -> str:
    lead_id = lead_id_of(deal_id)
    if lead_id is None:
        raise NotFound(f"no deal {deal_id!r}")
    await cluster.ensure_local(request, deals, lead_id)
    return lead_id


@router.get(
    "/deals",
    summary="Deals, filtered; owner=unassigned lists the unassigned queue",
    response_model=Page[DealView],
    dependencies=runtime.requires("deals:read"),
)
async def list_deals(
    request: Request,
    page: Annotated[PageQuery, Depends(page_query)],
    lead_id: str | None = None,
    stage: Stage | None = None,
    owner: str | None = None,
    sla: FollowUpStatus | None = None,
) -> Page[Any]:
    """Deals in deal id order, a page at a time. With `lead_id`: one key read on the
    worker owning it. Otherwise each worker walks its keys and reads deals from the
    cursor on until the page is full (with filters, past the deals that do not match)."""
    now = clock.now()

    def item(deal: Deal) -> dict[str, Any] | None:
        view = DealView.of(deal, now, settings.follow_up_sla)
        if not selected(view, view.follow_up, stage=stage, owner=owner, sla=sla):
            return None
        return view.model_dump(mode="json")

    if lead_id is not None:
        await cluster.ensure_local(request, deals, lead_id)
        found = deals.get(lead_id)
        rendered = None if found is None else item(found)
        return Page(items=[] if rendered is None else [rendered], next_cursor=None)
    return await cluster.page(request, deals, page, item, key_field="lead_id")


@router.get("/deals/{deal_id}", responses=refusals(404), dependencies=runtime.requires("deals:read"))
async def get_deal(deal_id: str, request: Request) -> DealView:
    deal = deals.get(await _owned_lead_id(deal_id, request))
    if deal is None:
        raise NotFound(f"no deal {deal_id!r}")
    return _view(deal)


@router.post("/deals/{deal_id}/stage", responses=WRITE, dependencies=runtime.requires("deals:write"))
async def move_stage(deal_id: str, body: MoveRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    command = MoveStage(lead_id=lead_id, stage=body.stage, proposal=body.proposal, by=subject_of(request))
    deal: Deal = await commands.ask(command)
    return _view(deal)


@router.post("/deals/{deal_id}/objections", responses=WRITE, dependencies=runtime.requires("deals:write"))
async def record_objection(deal_id: str, body: ObjectionRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    command = RecordObjection(lead_id=lead_id, **body.model_dump(), by=subject_of(request))
    deal: Deal = await commands.ask(command)
    return _view(deal)


@router.post(
    "/deals/{deal_id}/contacts",
    summary="Record a contact with the lead (a call, an email...)",
    responses=WRITE,
    dependencies=runtime.requires("deals:write"),
)
async def record_contact(deal_id: str, body: ContactRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    command = RecordContact(lead_id=lead_id, **body.model_dump(), by=subject_of(request))
    deal: Deal = await commands.ask(command)
    return _view(deal)


@router.post("/deals/{deal_id}/close", responses=WRITE, dependencies=runtime.requires("deals:write"))
async def close_deal(deal_id: str, body: CloseRequest, request: Request) -> DealView:
    lead_id = await _owned_lead_id(deal_id, request)
    command = CloseDeal(
        lead_id=lead_id,
        outcome=body.outcome,
        lines=body.lines,
        lost_reason=body.lost_reason,
        by=subject_of(request),
    )
    deal: Deal = await commands.ask(command)
    return _view(deal)


@router.get(
    "/forecast",
    summary="Open pipeline value by month of expected close, weighted",
    dependencies=runtime.requires("deals:read"),
)
async def get_forecast() -> Forecast:
    """Open proposals' value per month of expected close and currency, weighted by
    each stage's probability: the configured one (LEADFLOW_FORECAST_PLAN) until
    enough closed deals (LEADFLOW_FORECAST_MIN_HISTORY) measure the conversion from
    the stage to won. The expected close is derived (stage entered + the stage's
    typical days to close; overdue deals count in the current month); deals with no
    proposal are counted, not valued. See services/sales/domain/forecast.py.

    Cost: no deal is read. Each worker keeps sums as deals are written (a few
    numbers per stage, month and currency); the read asks every other worker for
    its sums, one request each, and adds them up."""
    shares = [await forecast_here()]
    for body in await cluster.gather(deals, "/forecast/share"):
        shares.append(ForecastShare.model_validate_json(body))
    cluster.whole(deals, (share.partitions for share in shares))
    sums = add_sums(*(decode_sums(share.sums) for share in shares))
    return forecast_from(sums, clock.now(), settings.forecast_plan, settings.forecast_min_history)


@router.get("/forecast/share", include_in_schema=False, dependencies=runtime.requires("deals:read"))
async def forecast_here() -> ForecastShare:
    """This worker's forecast sums (asked by the worker answering GET /forecast)."""
    share = FORECAST.share()
    return ForecastShare(partitions=sorted(share.partitions), sums=encode_sums(share.totals))


@router.get("/catalog", dependencies=runtime.requires("deals:read"))
async def get_catalog() -> dict[str, Any]:
    """The catalogue's products (inactive ones included, flagged), its version,
    currency and the largest discount a rep may give."""
    return {
        "version": catalog.version,
        "currency": catalog.currency,
        "max_discount_percent": catalog.max_discount_percent,
        "items": catalog.products,
    }


@router.get("/reps", dependencies=runtime.requires("deals:read"))
async def list_reps(request: Request) -> RepsView:
    """Each rep's territories, capacity and load, and the deals waiting for one. Each
    desk's figures come from the worker holding it: one request to another worker
    per desk it holds, all at once."""
    views = await asyncio.gather(*(_desk_view(pool) for pool in roster.pools))
    order = {rep.rep_id: n for n, rep in enumerate(roster.reps)}
    reps = sorted((rep for view in views for rep in view.reps), key=lambda r: order.get(r.rep_id, len(order)))
    won, lost = sum(view.won for view in views), sum(view.lost for view in views)
    return RepsView(
        items=reps,
        unassigned=sum(view.unassigned for view in views),
        win_rate=won / (won + lost) if won + lost else None,
        roster_version=roster.version,
    )


@router.get("/desks/{key}", responses=refusals(404), dependencies=runtime.requires("deals:read"))
async def get_desk(key: str, request: Request) -> DeskView:
    """One assignment desk (see GET /reps for each rep's): its pool's reps and their
    load, its queue and its win rate; answered by the worker holding the desk."""
    pool = roster.pool(key)
    if pool is None:
        raise NotFound(f"no desk {key!r}")
    await cluster.ensure_local(request, desk, key)
    return DeskView.of(pool, desk.get(key) or Desk())


async def _desk_view(pool: Pool) -> DeskView:
    if cluster.owns(desk, pool.key):
        return DeskView.of(pool, desk.get(pool.key) or Desk())
    raw = await cluster.fetch(desk, pool.key, f"/desks/{pool.key}")
    if raw is None:
        # Workers disagree on the roster: a rollout of a new one is under way.
        raise Unavailable(f"the worker holding {pool.key!r} does not know that desk; retry")
    return DeskView.model_validate_json(raw)


runtime.api.include_router(router)

if settings.cors_origins:
    # Reads only, with a bearer token (no cookies): the browser sends the preflight,
    # the route still checks the token.
    runtime.api.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET"],
        allow_headers=["Authorization"],
    )

if settings.clock_control:
    # Tests only (LEADFLOW_CLOCK_CONTROL): lets time pass on this worker.
    @runtime.api.get("/clock", tags=["testing"], dependencies=runtime.requires("deals:read"))
    async def read_clock() -> ClockView:
        return ClockView(now=clock.now(), offset_seconds=clock.offset.total_seconds())

    @runtime.api.post(
        "/clock",
        tags=["testing"],
        summary="Move this worker's clock forward",
        dependencies=runtime.requires("deals:write"),
    )
    async def advance_clock(body: ClockAdvance) -> ClockView:
        now = clock.advance(timedelta(seconds=body.seconds))
        return ClockView(now=now, offset_seconds=clock.offset.total_seconds())
