"""Sales' agents: thin loops that hand each record to its handler."""

from typing import Any

from schemas.events import LeadQualified
from services.runtime.events import consume
from services.sales import handlers
from services.sales.app import app, runtime
from services.sales.topics import commands, lead_qualified


@app.agent(lead_qualified)
async def open_deals(stream: Any) -> None:
    await consume(stream, LeadQualified, handlers.on_lead_qualified, runtime.dead_letters)


@app.agent(commands.topic)
async def apply_commands(stream: Any) -> None:
    await commands.serve(stream, handlers.handle)
