"""Marketing's agents: thin loops that hand each record to its handler."""

from typing import Any

from schemas.events import DealClosed, DealUpdated, OrderCreated, OrderUpdated
from services.marketing import handlers
from services.marketing.app import app, runtime
from services.marketing.topics import commands, deal_closed, deal_updated, order_created, order_updated
from services.runtime.events import consume


@app.agent(commands.topic)
async def apply_commands(stream: Any) -> None:
    await commands.serve(stream, handlers.handle)


@app.agent(deal_closed)
async def close_the_loop(stream: Any) -> None:
    await consume(stream, DealClosed, handlers.on_deal_closed, runtime.dead_letters)


@app.agent(deal_updated)
async def follow_deals(stream: Any) -> None:
    await consume(stream, DealUpdated, handlers.on_deal_updated, runtime.dead_letters)


@app.agent(order_created)
async def follow_orders(stream: Any) -> None:
    await consume(stream, OrderCreated, handlers.on_order_created, runtime.dead_letters)


@app.agent(order_updated)
async def follow_order_updates(stream: Any) -> None:
    await consume(stream, OrderUpdated, handlers.on_order_updated, runtime.dead_letters)
