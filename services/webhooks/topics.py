"""What webhooks reads and writes on Kafka: every public event topic in, nothing published."""

from services.webhooks.app import runtime
from services.webhooks.commands import WebhooksCommand
from services.webhooks.domain.subscriptions import EVENT_TYPES

# Reads: every event a subscription may ask for; each goes to those it matches.
events = {name: runtime.consumes(name) for name in EVENT_TYPES}

# HTTP writes and delivery outcomes, keyed by subscription id or lead id.
commands = runtime.command_channel(WebhooksCommand)
