"""What sales reads and writes on Kafka."""

from schemas import topics
from services.sales.app import runtime
from services.sales.commands import SalesCommand

# Reads: leads marketing hands over.
lead_qualified = runtime.consumes(topics.LEAD_QUALIFIED)

# Writes: every deal's outcome, won or lost.
runtime.publishes(topics.DEAL_CLOSED)

# HTTP writes, keyed by lead id, applied by the worker owning the deal.
commands = runtime.command_channel(SalesCommand)
