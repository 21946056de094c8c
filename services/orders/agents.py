"""Orders' agents: thin loops that hand each record to its handler."""

from typing import Any

from schemas.events import DealClosed
from services.orders import handlers
from services.orders.app import app, runtime
from services.orders.topics import commands, deal_closed
from services.runtime.events import consume


@app.agent(deal_closed)
async def make_orders(stream: Any) -> None:
    await consume(stream, DealClosed, handlers.on_deal_closed, runtime.dead_letters)


@app.agent(commands.topic)
async def apply_commands(stream: Any) -> None:
    await commands.serve(stream, handlers.handle)
