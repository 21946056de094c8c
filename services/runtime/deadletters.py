"""Dead letters: a record that cannot be processed goes to `<topic>.dlq`.

The record keeps its key and value byte for byte; headers say why and where it
came from, so it can be inspected and replayed. A dead letter never stops a worker.
"""

import logging
import traceback
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import Message, TopicT
from prometheus_client import Counter

from schemas import topics
from schemas.topics import dead_letter_topic

log = logging.getLogger(__name__)

DEAD_LETTERS = Counter(
    "leadflow_dead_letters",
    "Records sent to a dead-letter topic, by the topic they came from.",
    ["topic", "error_type"],
)


class DeadLetters:
    def __init__(self, app: faust.App, service: str) -> None:
        self.app = app
        self.service = service
        self._topics: dict[str, TopicT] = {}

    def topic_for(self, origin: str) -> TopicT:
        if origin not in self._topics:
            self._topics[origin] = self.app.topic(
                dead_letter_topic(origin), key_serializer="raw", value_serializer="raw"
            )
        return self._topics[origin]

    async def send(self, message: Message, error: BaseException) -> None:
        reason = _describe(error)
        headers = [
            (topics.DLQ_ERROR, reason.encode()),
            (topics.DLQ_ERROR_TYPE, type(error).__name__.encode()),
            (topics.DLQ_ORIGIN_TOPIC, message.topic.encode()),
            (topics.DLQ_ORIGIN_PARTITION, str(message.partition).encode()),
            (topics.DLQ_ORIGIN_OFFSET, str(message.offset).encode()),
            (topics.DLQ_FAILED_BY, self.service.encode()),
            (topics.DLQ_FAILED_AT, datetime.now(UTC).isoformat().encode()),
            *_original_headers(message),
        ]
        log.warning(
            "dead letter",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "error": reason,
            },
        )
        try:
            await self._send(message.topic, message.key, message.value, headers)
        except MessageSizeTooLargeError:
            # The copy with its headers is over the broker's limit; a crash here would
            # redeliver it forever. The value stays on its origin topic until retention.
            size = str(len(message.value or b"")).encode()
            await self._send(message.topic, message.key, None, [*headers, (topics.DLQ_VALUE_OMITTED, size)])
        DEAD_LETTERS.labels(topic=message.topic, error_type=type(error).__name__).inc()

    async def _send(
        self, origin: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        # Awaited until the broker has it: the origin offset may be committed right after.
        delivery = await self.topic_for(origin).send(key=key, value=value, headers=headers)
        await delivery


def _original_headers(message: Message) -> list[tuple[str, bytes]]:
    headers: Any = message.headers or []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(str(k), bytes(v)) for k, v in items if not str(k).startswith("dlq.")]


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if not isinstance(error, ValueError | LookupError):
        # Unexpected failures keep their origin for whoever reads the DLQ.
        frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
        if frame:
            text += f" (at {frame[0].filename}:{frame[0].lineno})"
    return text[:4000]
