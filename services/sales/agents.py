"""Sales' agents: thin loops that hand each record to its handler."""

import logging
from typing import Any

from pydantic import TypeAdapter

from schemas.events import LeadQualified
from services.runtime.errors import DomainError
from services.runtime.events import consume
from services.sales import handlers
from services.sales.app import app, runtime
from services.sales.domain.assignment import DeskRequest
from services.sales.topics import assignment_requests, commands, lead_qualified

log = logging.getLogger(__name__)


@app.agent(lead_qualified)
async def open_deals(stream: Any) -> None:
    await consume(stream, LeadQualified, handlers.on_lead_qualified, runtime.dead_letters)


@app.agent(commands.topic)
async def apply_commands(stream: Any) -> None:
    await commands.serve(stream, handlers.handle)


@app.agent(assignment_requests)
async def assign_deals(stream: Any) -> None:
    """The desks: each desk's requests one at a time, in the order of its partition."""
    adapter: TypeAdapter[DeskRequest] = TypeAdapter(DeskRequest)
    async for event in stream.events():
        try:
            request = adapter.validate_json(event.message.value or b"")
            if event.message.key != request.desk.encode():
                # Its state would be written to another desk's partition.
                raise ValueError(f"record key is not the request's desk {request.desk!r}")
            await handlers.on_desk_request(request)
        except (ValueError, DomainError) as refused:  # pydantic's ValidationError included
            await runtime.dead_letters.send(event.message, refused)
        except Exception as failed:
            log.exception("handler failed", extra={"topic": event.message.topic})
            await runtime.dead_letters.send(event.message, failed)
