"""Marketing's agents: thin loops that hand each record to its handler."""

import logging
from typing import Any

from pydantic import ValidationError

from schemas.events import DealClosed
from services.marketing import handlers
from services.marketing.app import app, runtime
from services.marketing.domain.performance import CampaignFact
from services.marketing.topics import campaign_facts, commands, deal_closed
from services.runtime.events import consume

log = logging.getLogger(__name__)


@app.agent(commands.topic)
async def apply_commands(stream: Any) -> None:
    await commands.serve(stream, handlers.handle)


@app.agent(deal_closed)
async def close_the_loop(stream: Any) -> None:
    await consume(stream, DealClosed, handlers.on_deal_closed, runtime.dead_letters)


@app.agent(campaign_facts)
async def tally_campaigns(stream: Any) -> None:
    async for event in stream.events():
        message = event.message
        try:
            fact = CampaignFact.model_validate_json(message.value or b"")
            if fact.campaign_id.encode() != message.key:
                raise ValueError("record key is not the fact's campaign_id")
            await handlers.count_fact(fact)
        except (ValidationError, ValueError) as refused:
            await runtime.dead_letters.send(message, refused)
        except Exception as failed:
            log.exception("campaign fact failed", extra={"offset": message.offset})
            await runtime.dead_letters.send(message, failed)
