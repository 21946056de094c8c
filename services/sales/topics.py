"""What sales reads and writes on Kafka."""

from schemas import topics
from services.sales.app import runtime
from services.sales.commands import SalesCommand

# Reads: leads marketing hands over.
lead_qualified = runtime.consumes(topics.LEAD_QUALIFIED)

# Writes: every deal's outcome, won or lost, and its changes while open.
runtime.publishes(topics.DEAL_CLOSED, topics.DEAL_UPDATED)

# Writes to deals, keyed by lead id, applied by the worker owning the deal: from
# HTTP, and the assignment desk's decisions.
commands = runtime.command_channel(SalesCommand)

# Assignment requests to the desks, each under its desk's key (see domain/assignment.py).
assignment_requests = runtime.internal_topic("assignment-requests")
