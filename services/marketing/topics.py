"""What marketing reads and writes on Kafka."""

from schemas import topics
from services.marketing.app import runtime
from services.marketing.commands import MarketingCommand

# Reads: sales' verdict on every lead it was handed (closed-loop feedback).
deal_closed = runtime.consumes(topics.DEAL_CLOSED)
# Reads, for the funnel: what happens to a deal while open, and the orders.
deal_updated = runtime.consumes(topics.DEAL_UPDATED)
order_created = runtime.consumes(topics.ORDER_CREATED)
order_updated = runtime.consumes(topics.ORDER_UPDATED)

# Writes: every new lead, and the handover of qualified ones to sales.
runtime.publishes(topics.LEAD_CREATED, topics.LEAD_QUALIFIED)

# HTTP writes, keyed by lead (or campaign) id, applied by the worker owning the key.
commands = runtime.command_channel(MarketingCommand)
