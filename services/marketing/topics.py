"""What marketing reads and writes on Kafka."""

from collections.abc import Iterable

from schemas import topics
from services.marketing.app import runtime
from services.marketing.commands import MarketingCommand
from services.marketing.domain.performance import CampaignFact

# Reads: sales' verdict on every lead it was handed (closed-loop feedback).
deal_closed = runtime.consumes(topics.DEAL_CLOSED)

# Writes: every new lead, and the handover of qualified ones to sales.
runtime.publishes(topics.LEAD_CREATED, topics.LEAD_QUALIFIED)

# HTTP writes, keyed by lead (or campaign) id, applied by the worker owning the key.
commands = runtime.command_channel(MarketingCommand)

# Leads are partitioned by lead, performance by campaign: what happens to a lead
# is re-keyed here by its campaign, for the worker that keeps that campaign's tally.
# Marketing's own topic: plain JSON CampaignFacts, not part of the event contract.
campaign_facts = runtime.internal_topic("campaign-facts")


async def send_facts(facts: Iterable[CampaignFact]) -> None:
    for fact in facts:
        await campaign_facts.send(key=fact.campaign_id.encode(), value=fact.model_dump_json().encode())
