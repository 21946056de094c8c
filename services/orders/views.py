"""Orders' HTTP API."""

from typing import Any

from fastapi import APIRouter, Request

from services.orders.app import orders, runtime
from services.orders.commands import ChangeStatus
from services.orders.domain.orders import Order, OrderStatus, lead_id_of
from services.orders.models import StatusRequest
from services.orders.topics import commands
from services.runtime.errors import NotFound
from services.runtime.refusals import documented

refusals = documented(
    {
        404: "No such order",
        409: "The order cannot move to that status from where it is",
    }
)

router = APIRouter(tags=["orders"], responses=refusals(503))
cluster = runtime.cluster


async def _owned_lead_id(order_id: str, request: Request) -> str:
    lead_id = lead_id_of(order_id)
    if lead_id is None:
        raise NotFound(f"no order {order_id!r}")
    await cluster.ensure_local(request, orders, lead_id)
    return lead_id


@router.get("/orders")
async def list_orders(
    request: Request, deal_id: str | None = None, status: OrderStatus | None = None
) -> dict[str, Any]:
    local = [order for _, order in cluster.local_items(orders)]
    items = [o.model_dump(mode="json") for o in local]
    items += await cluster.gather(request, orders)
    items = [
        o
        for o in items
        if (deal_id is None or o["deal_id"] == deal_id) and (status is None or o["status"] == status)
    ]
    return {"items": sorted(items, key=lambda o: o["created_at"])}


@router.get("/orders/{order_id}", responses=refusals(404))
async def get_order(order_id: str, request: Request) -> Order:
    order = orders.get(await _owned_lead_id(order_id, request))
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return order


@router.post("/orders/{order_id}/status", responses=refusals(400, 404, 409))
async def change_status(order_id: str, body: StatusRequest, request: Request) -> Order:
    lead_id = await _owned_lead_id(order_id, request)
    order: Order = await commands.ask(ChangeStatus(lead_id=lead_id, status=body.status))
    return order


runtime.api.include_router(router)
