"""Marketing's HTTP API: validate, route to the key's owner, send a command, answer."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Depends, Request, status
from fastapi.staticfiles import StaticFiles

from schemas.events import Channel
from services.marketing.app import campaign_counts, campaigns, funnel_counts, leads, runtime, settings
from services.marketing.commands import CaptureLead, CreateCampaign, RecordActivity
from services.marketing.domain import funnel
from services.marketing.domain.attribution import NO_CAMPAIGN, Model
from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.identity import lead_id_for
from services.marketing.domain.leads import Change, Lead, LeadStatus
from services.marketing.domain.performance import (
    ATTRIBUTED,
    CampaignCounts,
    Money,
    Performance,
    counts_of,
    performance,
    roi,
)
from services.marketing.handlers import refuse_bad_capture
from services.marketing.models import (
    ActivityAccepted,
    ActivityRequest,
    AttributedCampaign,
    AttributionShare,
    AttributionView,
    CampaignRequest,
    CampaignShare,
    FunnelShare,
    FunnelSources,
    LeadAccepted,
    LeadRequest,
    LeadView,
)
from services.marketing.topics import commands
from services.runtime.errors import NotFound, Unprocessable
from services.runtime.pages import Page, PageQuery, page_query
from services.runtime.refusals import documented

refusals = documented(
    {
        404: "No such campaign or lead",
    }
)


router = APIRouter(tags=["marketing"], responses=refusals(401, 403, 503))
cluster = runtime.cluster

REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid input: each problem with its field (`loc`) and reason (`msg`)"},
    **refusals(400),
}

# Campaigns never change once created, so a worker keeps those it had to ask for.
_campaigns_seen: dict[str, Campaign] = {}
MINT_TRIES = 64


def _local_campaign_id() -> str | None:
    """A fresh campaign id on a partition this worker owns, so the command that
    creates it is applied here and answered at once; None if none turned up
    (a worker without partitions), and the request goes to a worker with some."""
    for _ in range(MINT_TRIES):
        candidate = str(uuid4())
        if cluster.owns(campaigns, candidate):
            return candidate
    return None


@router.post(
    "/campaigns",
    status_code=status.HTTP_201_CREATED,
    responses=REFUSED,
    dependencies=runtime.requires("campaigns:write"),
)
async def create_campaign(body: CampaignRequest, request: Request) -> Campaign:
    campaign_id = _local_campaign_id()
    if campaign_id is None:
        campaign_id = str(uuid4())
        await cluster.ensure_local(request, campaigns, campaign_id)  # the owner mints its own
    campaign: Campaign = await commands.ask(CreateCampaign(campaign_id=campaign_id, **body.model_dump()))
    return campaign


@router.get("/campaigns", response_model=Page[Campaign], dependencies=runtime.requires("campaigns:read"))
async def list_campaigns(request: Request, page: Annotated[PageQuery, Depends(page_query)]) -> Page[Any]:
    """Campaigns in campaign id order, a page at a time (see services/runtime/pages.py)."""

    def item(campaign: Campaign) -> dict[str, Any]:
        return campaign.model_dump(mode="json")

    return await cluster.page(request, campaigns, page, item, key_field="campaign_id")


async def _owned_campaign(campaign_id: str, request: Request) -> Campaign:
    await cluster.ensure_local(request, campaigns, campaign_id)
    campaign = campaigns.get(campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return campaign


@router.get(
    "/campaigns/{campaign_id}", responses=refusals(404), dependencies=runtime.requires("campaigns:read")
)
async def get_campaign(campaign_id: str, request: Request) -> Campaign:
    return await _owned_campaign(campaign_id, request)


@router.get(
    "/campaigns/{campaign_id}/performance",
    responses=refusals(404),
    dependencies=runtime.requires("campaigns:read"),
)
async def get_campaign_performance(campaign_id: str, attribution: Model = Model.FIRST_TOUCH) -> Performance:
    """Closed-loop performance: leads, MQLs, deals, revenue, cost per lead, ROI, and
    the won revenue attributed to the campaign under `attribution` (first_touch,
    last_touch, linear, u_shaped) across the campaigns each lead touched.
    See services/marketing/domain/performance.py for what counts."""
    campaign = await campaign_named(campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    # A campaign's leads live on every partition: each worker sums its own.
    shares = [await counts_here(campaign_id)]
    for body in await cluster.gather(leads, f"/campaigns/{campaign_id}/counts"):
        shares.append(CampaignShare.model_validate_json(body))
    cluster.whole(leads, (share.partitions for share in shares))
    return performance(campaign, sum((share.counts for share in shares), CampaignCounts()), attribution)


@router.get(
    "/campaigns/{campaign_id}/counts",
    include_in_schema=False,
    dependencies=runtime.requires("campaigns:read"),
)
async def counts_here(campaign_id: str) -> CampaignShare:
    """This worker's part of a campaign's performance (asked by the worker reporting it)."""
    share = campaign_counts.share()
    return CampaignShare(
        partitions=sorted(share.partitions), counts=counts_of(campaign_id, share.totals, share.latest)
    )


@router.get(
    "/campaigns/{campaign_id}/reference",
    include_in_schema=False,
    dependencies=runtime.requires("leads:write"),
)
async def campaign_referenced(campaign_id: str, request: Request) -> Campaign:
    """The campaign a capture names, for the worker taking the capture: asked with the
    capturing caller's token, which may write leads without reading campaigns."""
    return await _owned_campaign(campaign_id, request)


async def campaign_named(campaign_id: str | None) -> Campaign | None:
    """The campaign a capture names, from whichever worker owns it; None if none exists."""
    if campaign_id is None:
        return None
    return await _campaign(campaign_id, f"/campaigns/{campaign_id}/reference")


@router.post(
    "/leads",
    status_code=status.HTTP_202_ACCEPTED,
    responses=REFUSED,
    dependencies=runtime.requires("leads:write"),
)
async def capture_lead(body: LeadRequest, request: Request) -> LeadAccepted:
    """One lead per person: a second capture of the same (normalised) email answers
    the same lead_id with duplicate: true and counts as engagement."""
    capture = body.capture()
    campaign = await campaign_named(capture.campaign_id)
    # Refused here, on whichever worker got it, before any state is touched; the
    # agent checks again when it applies the command.
    refuse_bad_capture(capture, campaign)
    # Safe by design: the id derives from the email, so every capture of one person
    # is a command on one partition, whose agent applies them one after the other,
    # whichever worker took the request. The request itself goes to the worker
    # owning that partition only so that it can await the outcome there.
    lead_id = lead_id_for(body.contact.email, settings.id_namespace)
    await cluster.ensure_local(request, leads, lead_id)
    command = CaptureLead(lead_id=lead_id, capture=capture, campaign=campaign)
    change: Change = await commands.ask(command)
    return LeadAccepted(lead_id=lead_id, status=change.lead.status, duplicate=change.duplicate)


@router.post(
    "/leads/{lead_id}/activities",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**REFUSED, **refusals(404)},
    dependencies=runtime.requires("leads:write"),
)
async def record_activity(lead_id: str, body: ActivityRequest, request: Request) -> ActivityAccepted:
    await cluster.ensure_local(request, leads, lead_id)
    if body.campaign_id is not None and await campaign_named(body.campaign_id) is None:
        raise Unprocessable(f"no campaign {body.campaign_id!r}", field="campaign_id")
    command = RecordActivity(lead_id=lead_id, type=body.type, campaign_id=body.campaign_id)
    change: Change = await commands.ask(command)
    return ActivityAccepted(lead_id=lead_id, status=change.lead.status, score=change.lead.score)


@router.get("/leads/{lead_id}", responses=refusals(404), dependencies=runtime.requires("leads:read"))
async def get_lead(lead_id: str, request: Request) -> LeadView:
    await cluster.ensure_local(request, leads, lead_id)
    lead = leads.get(lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id!r}")
    return LeadView.model_validate(lead.model_dump())


@router.get("/leads", response_model=Page[LeadView], dependencies=runtime.requires("leads:read"))
async def list_leads(
    request: Request,
    page: Annotated[PageQuery, Depends(page_query)],
    status: LeadStatus | None = None,
    campaign_id: str | None = None,
) -> Page[Any]:
    """Leads in lead id order, a page at a time: each worker walks its keys and reads
    leads from the cursor on until the page is full (with filters, past the leads
    that do not match)."""

    def item(lead: Lead) -> dict[str, Any] | None:
        if status not in (None, lead.status) or campaign_id not in (None, lead.campaign_id):
            return None
        return LeadView.model_validate(lead.model_dump()).model_dump(mode="json")

    return await cluster.page(request, leads, page, item, key_field="lead_id")


# -- attribution -----------------------------------------------------------------------


@router.get("/attribution", dependencies=runtime.requires("campaigns:read"))
async def get_attribution(model: Model = Model.FIRST_TOUCH) -> AttributionView:
    """Won revenue credited to every campaign the won leads touched under `model`
    (HubSpot's first_touch, last_touch, linear, u_shaped; see
    services/marketing/domain/attribution.py), with each campaign's ROI on it; the
    entry with campaign_id null is the share of captures through no campaign. Under
    every model the entries add up to `total`, the won revenue.

    Cost: like campaign performance, no lead is read; each worker answers with the
    sums it keeps, one request per other worker."""
    shares = [await attribution_here()]
    for body in await cluster.gather(leads, "/attribution/share"):
        shares.append(AttributionShare.model_validate_json(body))
    cluster.whole(leads, (share.partitions for share in shares))
    credit: dict[str, dict[str, Decimal]] = {}
    for share in shares:
        for campaign_id, credited_model, currency, figure in share.credits:
            if credited_model == model:
                mine = credit.setdefault(campaign_id, {})
                mine[currency] = mine.get(currency, Decimal(0)) + Decimal(figure)
    total: dict[str, Decimal] = {}
    rows = []
    for campaign_id, amounts in sorted(credit.items(), key=lambda kv: (kv[0] == NO_CAMPAIGN, kv[0])):
        for currency, amount in amounts.items():
            total[currency] = total.get(currency, Decimal(0)) + amount
        revenue = [Money(amount=a, currency=c) for c, a in sorted(amounts.items())]
        campaign = None if campaign_id == NO_CAMPAIGN else await _campaign_to_read(campaign_id)
        row = AttributedCampaign(campaign_id=campaign_id or None, revenue=revenue)
        if campaign is not None:
            spend = Money(amount=campaign.budget.amount, currency=campaign.budget.currency)
            campaign_roi, note = roi(spend, amounts)
            row = row.model_copy(
                update={"name": campaign.name, "spend": spend, "roi": campaign_roi, "roi_note": note}
            )
        rows.append(row)
    return AttributionView(
        model=model, campaigns=rows, total=[Money(amount=a, currency=c) for c, a in sorted(total.items())]
    )


@router.get("/attribution/share", include_in_schema=False, dependencies=runtime.requires("campaigns:read"))
async def attribution_here() -> AttributionShare:
    """This worker's attributed revenue sums (asked by the worker answering GET /attribution)."""
    share = campaign_counts.share()
    rows = [
        (key[0], key[2], key[3], format(amount, "f"))
        for key, amount in share.totals.items()
        if isinstance(key, tuple) and len(key) == 4 and key[1] == ATTRIBUTED
    ]
    return AttributionShare(partitions=sorted(share.partitions), credits=rows)


# -- the funnel ------------------------------------------------------------------------


@router.get("/funnel", dependencies=runtime.requires("campaigns:read"))
async def get_funnel(
    campaign_id: str | None = None,
    channel: Channel | None = None,
    since: date | None = None,
    until: date | None = None,
) -> funnel.Funnel:
    """The funnel of the leads captured from `since` to `until` (UTC days, both
    included; open-ended when left out), of one campaign or channel or all: how
    many got how far, conversion between steps, disqualification and lost reasons,
    the handover (time to first contact, follow-up SLA by rep and campaign, leads
    sales sent back as not real), revenue and ROI per campaign. Fed by lead.created's
    capture, deal.updated, deal.closed and order.created; see domain/funnel.py.

    Cost: no lead is read. Each worker keeps sums as its leads are written (per
    campaign, channel, capture day and step); the read asks every other worker for
    its sums, one request each, adds and filters them, and looks up each campaign
    in view once (kept afterwards: campaigns do not change)."""
    shares = [await funnel_here()]
    for body in await cluster.gather(leads, "/funnel/share"):
        shares.append(FunnelShare.model_validate_json(body))
    cluster.whole(leads, (share.partitions for share in shares))
    sums: dict[Any, Any] = {}
    for share in shares:
        for key, value in funnel.decode_sums(share.sums).items():
            sums[key] = sums.get(key, 0) + value
    drawn = funnel.funnel_from(
        sums,
        datetime.now(UTC),
        campaign_id=campaign_id,
        channel=None if channel is None else str(channel),
        since=since,
        until=until,
    )
    named = [await _campaign_to_read(row.key) for row in drawn.campaigns if row.key is not None]
    return funnel.with_campaigns(drawn, [c for c in named if c is not None])


@router.get("/funnel/share", include_in_schema=False, dependencies=runtime.requires("campaigns:read"))
async def funnel_here() -> FunnelShare:
    """This worker's funnel sums (asked by the worker answering GET /funnel)."""
    share = funnel_counts.share()
    return FunnelShare(partitions=sorted(share.partitions), sums=funnel.encode_sums(share.totals))


@router.get("/funnel/sources", dependencies=runtime.requires("campaigns:read"))
async def funnel_sources() -> FunnelSources:
    """Where the funnel page reads what marketing does not own: sales' forecast."""
    return FunnelSources(forecast_url=settings.forecast_url)


async def _campaign_to_read(campaign_id: str) -> Campaign | None:
    """A campaign for a reader (campaigns:read), from whichever worker owns it."""
    return await _campaign(campaign_id, f"/campaigns/{campaign_id}")


async def _campaign(campaign_id: str, owner_path: str) -> Campaign | None:
    """A campaign from this worker's cache or table, or from its owner at `owner_path`."""
    if campaign_id in _campaigns_seen:
        return _campaigns_seen[campaign_id]
    if cluster.owns(campaigns, campaign_id):
        found = campaigns.get(campaign_id)
    else:
        body = await cluster.fetch(campaigns, campaign_id, owner_path)
        found = None if body is None else Campaign.model_validate_json(body)
    if found is not None:
        _campaigns_seen[campaign_id] = found
    return found


runtime.api.include_router(router)

# The funnel page: static files only, open like any web page's code. They hold no
# data: the page asks GET /funnel (and sales' /forecast) with the reader's bearer
# token, which it takes from the address's #fragment or the reader pastes (see
# static/funnel/index.html). Chart.js is vendored, pinned (static/vendor/).
STATIC = Path(__file__).resolve().parent / "static"
runtime.api.mount("/funnel/page", StaticFiles(directory=STATIC, html=True), name="funnel-page")
