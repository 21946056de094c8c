"""Marketing's HTTP API: validate, route to the key's owner, send a command, answer."""

from typing import Any
from uuid import uuid4

from fastapi import APIRouter, Request, status

from schemas.events import Contact
from services.marketing.app import campaigns, leads, runtime, settings
from services.marketing.commands import CaptureLead, CreateCampaign, RecordActivity
from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.identity import lead_id_for
from services.marketing.domain.leads import Capture, Change
from services.marketing.models import (
    ActivityAccepted,
    ActivityRequest,
    CampaignRequest,
    LeadAccepted,
    LeadRequest,
    LeadView,
)
from services.marketing.topics import commands
from services.runtime.errors import NotFound

router = APIRouter(tags=["marketing"])
cluster = runtime.cluster


# Campaign commands share one key: the worker owning its partition creates every
# campaign, in turn. Campaigns are few; leads are what is spread over workers.
CAMPAIGNS_KEY = "campaigns"


@router.post("/campaigns", status_code=status.HTTP_201_CREATED)
async def create_campaign(body: CampaignRequest, request: Request) -> Campaign:
    await cluster.ensure_local(request, leads, CAMPAIGNS_KEY)
    campaign_id = str(uuid4())
    campaign: Campaign = await commands.ask(
        CAMPAIGNS_KEY, CreateCampaign(campaign_id=campaign_id, **body.model_dump())
    )
    return campaign


@router.get("/campaigns")
async def list_campaigns() -> dict[str, list[Campaign]]:
    items = sorted((c for _, c in campaigns.items()), key=lambda c: c.created_at)
    return {"items": items}


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: str) -> Campaign:
    campaign = campaigns.get(campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return campaign


@router.post("/leads", status_code=status.HTTP_202_ACCEPTED)
async def capture_lead(body: LeadRequest, request: Request) -> LeadAccepted:
    lead_id = lead_id_for(body.contact.email, settings.id_namespace)
    await cluster.ensure_local(request, leads, lead_id)
    capture = Capture(
        channel=body.channel,
        campaign_id=body.campaign_id,
        contact=Contact(**body.contact.model_dump()),
        company=body.company,
        consent=body.consent,
        intent=body.intent,
    )
    change: Change = await commands.ask(lead_id, CaptureLead(lead_id=lead_id, capture=capture))
    return LeadAccepted(lead_id=lead_id, status=change.lead.status, duplicate=change.duplicate)


@router.post("/leads/{lead_id}/activities", status_code=status.HTTP_202_ACCEPTED)
async def record_activity(lead_id: str, body: ActivityRequest, request: Request) -> ActivityAccepted:
    await cluster.ensure_local(request, leads, lead_id)
    change: Change = await commands.ask(lead_id, RecordActivity(lead_id=lead_id, type=body.type))
    return ActivityAccepted(lead_id=lead_id, status=change.lead.status, score=change.lead.score)


@router.get("/leads/{lead_id}")
async def get_lead(lead_id: str, request: Request) -> LeadView:
    await cluster.ensure_local(request, leads, lead_id)
    lead = leads.get(lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id!r}")
    return LeadView.model_validate(lead.model_dump())


@router.get("/leads")
async def list_leads(
    request: Request, status: str | None = None, campaign_id: str | None = None
) -> dict[str, Any]:
    mine = [
        LeadView.model_validate(lead.model_dump()).model_dump(mode="json")
        for _, lead in cluster.local_items(leads)
    ]
    items = [*mine, *await cluster.gather(request, leads)]
    items = [
        i
        for i in items
        if (status is None or i["status"] == status)
        and (campaign_id is None or i["campaign_id"] == campaign_id)
    ]
    return {"items": sorted(items, key=lambda i: i["captured_at"])}


runtime.api.include_router(router)
