"""What orders reads and writes on Kafka."""

from schemas import topics
from services.orders.app import runtime
from services.orders.commands import OrdersCommand

# Reads: closed deals; the won ones become orders.
deal_closed = runtime.consumes(topics.DEAL_CLOSED)

# Writes: every new order, and its moves through its lifecycle.
runtime.publishes(topics.ORDER_CREATED, topics.ORDER_UPDATED)

# HTTP writes, keyed by lead id, applied by the worker owning the order.
commands = runtime.command_channel(OrdersCommand)
