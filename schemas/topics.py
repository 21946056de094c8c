"""The event topics and the dead-letter convention."""

from typing import Final

LEAD_CREATED: Final = "lead.created"
LEAD_QUALIFIED: Final = "lead.qualified"
DEAL_CLOSED: Final = "deal.closed"
ORDER_CREATED: Final = "order.created"
DEAL_UPDATED: Final = "deal.updated"
ORDER_UPDATED: Final = "order.updated"

EVENT_TOPICS: Final = (LEAD_CREATED, LEAD_QUALIFIED, DEAL_CLOSED, ORDER_CREATED, DEAL_UPDATED, ORDER_UPDATED)

DLQ_SUFFIX: Final = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """Where records of `topic` that cannot be processed are kept."""
    return topic + DLQ_SUFFIX


# Headers of a dead letter: why it failed and where it came from. The record's
# key and value are the original's, byte for byte.
DLQ_ERROR: Final = "dlq.error"
DLQ_ERROR_TYPE: Final = "dlq.error.type"
DLQ_ORIGIN_TOPIC: Final = "dlq.origin.topic"
DLQ_ORIGIN_PARTITION: Final = "dlq.origin.partition"
DLQ_ORIGIN_OFFSET: Final = "dlq.origin.offset"
DLQ_FAILED_BY: Final = "dlq.failed.by"
DLQ_FAILED_AT: Final = "dlq.failed.at"
# Only on a dead letter whose copy would be over the broker's record size limit.
DLQ_VALUE_OMITTED: Final = "dlq.value.omitted"

DLQ_HEADERS: Final = {
    DLQ_ERROR: "Why the record could not be processed (for a refused event: which field and why).",
    DLQ_ERROR_TYPE: "The kind of error, e.g. ValidationError, TotalMismatch.",
    DLQ_ORIGIN_TOPIC: "The topic the record was read from.",
    DLQ_ORIGIN_PARTITION: "Its partition there (decimal).",
    DLQ_ORIGIN_OFFSET: "Its offset there (decimal).",
    DLQ_FAILED_BY: "The service that could not process it, e.g. orders.",
    DLQ_FAILED_AT: "When, as an ISO 8601 timestamp in UTC.",
}
