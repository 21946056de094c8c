"""Sales' HTTP API: route to the deal's owner, send a command, answer."""

from typing import Any

from fastapi import APIRouter, Request

from services.runtime.errors import NotFound
from services.sales.app import catalog, deals, runtime
from services.sales.commands import CloseDeal, MoveStage, RecordObjection
from services.sales.domain.deals import Deal, Stage, lead_id_of
from services.sales.models import CloseRequest, MoveRequest, ObjectionRequest
from services.sales.topics import commands

router = APIRouter(tags=["sales"])
cluster = runtime.cluster


async def _owned_lead_id(deal_id: str, request: Request) -> str:
    lead_id = lead_id_of(deal_id)
    if lead_id is None:
        raise NotFound(f"no deal {deal_id!r}")
    await cluster.ensure_local(request, deals, lead_id)
    return lead_id


@router.get("/deals")
async def list_deals(
    request: Request, lead_id: str | None = None, stage: Stage | None = None, owner: str | None = None
) -> dict[str, Any]:
    if lead_id is not None:
        await cluster.ensure_local(request, deals, lead_id)
        found = deals.get(lead_id)
        local = [found] if found else []
    else:
        local = [deal for _, deal in cluster.local_items(deals)]
        local = [d for d in local if stage is None or d.stage is stage]
        local = [d for d in local if owner is None or d.owner == owner]
    items = [d.model_dump(mode="json") for d in local]
    if lead_id is None:
        items += await cluster.gather(request, deals)
    return {"items": sorted(items, key=lambda d: d["opened_at"])}


@router.get("/deals/{deal_id}")
async def get_deal(deal_id: str, request: Request) -> Deal:
    deal = deals.get(await _owned_lead_id(deal_id, request))
    if deal is None:
        raise NotFound(f"no deal {deal_id!r}")
    return deal


@router.post("/deals/{deal_id}/stage")
async def move_stage(deal_id: str, body: MoveRequest, request: Request) -> Deal:
    lead_id = await _owned_lead_id(deal_id, request)
    deal: Deal = await commands.ask(lead_id, MoveStage(lead_id=lead_id, stage=body.stage))
    return deal


@router.post("/deals/{deal_id}/objections")
async def record_objection(deal_id: str, body: ObjectionRequest, request: Request) -> Deal:
    lead_id = await _owned_lead_id(deal_id, request)
    deal: Deal = await commands.ask(lead_id, RecordObjection(lead_id=lead_id, **body.model_dump()))
    return deal


@router.post("/deals/{deal_id}/close")
async def close_deal(deal_id: str, body: CloseRequest, request: Request) -> Deal:
    lead_id = await _owned_lead_id(deal_id, request)
    deal: Deal = await commands.ask(lead_id, CloseDeal(lead_id=lead_id, **body.model_dump()))
    return deal


@router.get("/catalog")
async def get_catalog() -> dict[str, Any]:
    """The catalogue's products (inactive ones included, flagged), its version and currency."""
    return {"version": catalog.version, "currency": catalog.currency, "items": catalog.products}


runtime.api.include_router(router)
