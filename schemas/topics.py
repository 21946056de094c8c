"""The four event topics and the dead-letter convention."""

from typing import Final

LEAD_CREATED: Final = "lead.created"
LEAD_QUALIFIED: Final = "lead.qualified"
DEAL_CLOSED: Final = "deal.closed"
ORDER_CREATED: Final = "order.created"

EVENT_TOPICS: Final = (LEAD_CREATED, LEAD_QUALIFIED, DEAL_CLOSED, ORDER_CREATED)

DLQ_SUFFIX: Final = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """Where records of `topic` that cannot be processed are kept."""
    return topic + DLQ_SUFFIX
