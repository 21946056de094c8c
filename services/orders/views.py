"""Orders' HTTP API."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.orders.app import orders, runtime
from services.orders.commands import ChangeStatus
from services.orders.domain.orders import Order, OrderStatus, lead_id_of, lead_id_of_deal
from services.orders.models import StatusRequest
from services.orders.topics import commands
from services.runtime.auth import subject_of
from services.runtime.errors import NotFound
from services.runtime.pages import Page, PageQuery, page_query
from services.runtime.refusals import documented

refusals = documented(
    {
        404: "No such order",
        409: "The order cannot move to that status from where it is",
    }
)

router = APIRouter(tags=["orders"], responses=refusals(401, 403, 503))
cluster = runtime.cluster


async def _owned_lead_id(order_id: str, request: Request) -> str:
    lead_id = lead_id_of(order_id)
    if lead_id is None:
        raise NotFound(f"no order {order_id!r}")
    await cluster.ensure_local(request, orders, lead_id)
    return lead_id


@router.get("/orders", response_model=Page[Order], dependencies=runtime.requires("orders:read"))
async def list_orders(
    request: Request,
    page: Annotated[PageQuery, Depends(page_query)],
    deal_id: str | None = None,
    status: OrderStatus | None = None,
) -> Page[Any]:
    """Orders in order id order, a page at a time. With `deal_id`: one key read on the
    worker owning it. Otherwise each worker walks its keys and reads orders from the
    cursor on until the page is full (with `status`, past those in other statuses)."""

    def item(order: Order) -> dict[str, Any] | None:
        wanted = deal_id in (None, order.deal_id) and status in (None, order.status)
        return order.model_dump(mode="json") if wanted else None

    if deal_id is not None:
        # One order per deal, keyed by the deal's lead: a read of one key, not a walk.
        lead_id = lead_id_of_deal(deal_id)
        if lead_id is None:
            return Page(items=[], next_cursor=None)
        await cluster.ensure_local(request, orders, lead_id)
        found = orders.get(lead_id)
        rendered = None if found is None else item(found)
        return Page(items=[] if rendered is None else [rendered], next_cursor=None)
    return await cluster.page(request, orders, page, item, key_field="lead_id")


@router.get("/orders/{order_id}", responses=refusals(404), dependencies=runtime.requires("orders:read"))
async def get_order(order_id: str, request: Request) -> Order:
    order = orders.get(await _owned_lead_id(order_id, request))
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return order


@router.post(
    "/orders/{order_id}/status",
    responses=refusals(400, 404, 409),
    dependencies=runtime.requires("orders:write"),
)
async def change_status(order_id: str, body: StatusRequest, request: Request) -> Order:
    lead_id = await _owned_lead_id(order_id, request)
    order: Order = await commands.ask(
        ChangeStatus(lead_id=lead_id, status=body.status, by=subject_of(request))
    )
    return order


runtime.api.include_router(router)
