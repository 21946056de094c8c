"""Marketing's agents: thin loops that hand each record to its handler."""

from typing import Any

from schemas.events import DealClosed
from services.marketing import handlers
from services.marketing.app import app, runtime
from services.marketing.topics import commands, deal_closed
from services.runtime.events import consume


@app.agent(commands.topic)
async def apply_commands(stream: Any) -> None:
    await commands.serve(stream, handlers.handle)


@app.agent(deal_closed)
async def close_the_loop(stream: Any) -> None:
    await consume(stream, DealClosed, handlers.on_deal_closed, runtime.dead_letters)
