"""CloudEvents in and out: publish a service's events, consume others' events.

Records are keyed by the lead id (the envelope's `subject`) so one lead keeps to
one partition number on every topic.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import faust
from faust.types import StreamT, TopicT
from pydantic import TypeAdapter, ValidationError

from schemas.envelope import CONTENT_TYPE, CloudEvent, new_event, once_id
from schemas.events import EventData
from services.runtime.deadletters import DeadLetters
from services.runtime.errors import DomainError

log = logging.getLogger(__name__)

D = TypeVar("D", bound=EventData)

HEADERS = [("content-type", CONTENT_TYPE.encode())]


def event_topic(app: faust.App, name: str) -> TopicT:
    """A topic of CloudEvents; values stay bytes so bad records can be dead-lettered."""
    return app.topic(name, key_serializer="raw", value_serializer="raw")


class EventPublisher:
    def __init__(self, app: faust.App, source: str, id_namespace: UUID) -> None:
        self.app = app
        self.source = source
        self.id_namespace = id_namespace
        self._topics: dict[str, TopicT] = {}

    def topic(self, name: str) -> TopicT:
        if name not in self._topics:
            self._topics[name] = event_topic(self.app, name)
        return self._topics[name]

    async def publish(
        self, data: EventData, *, subject: str, at: datetime | None = None, once_per: str | None = None
    ) -> CloudEvent[Any]:
        """Publish `data` keyed by `subject`. `once_per` names what the event can happen
        only once for (a lead's capture, a deal's close): its id then derives from it,
        so publishing it again after a crash repeats the id and subscribers drop it."""
        event = new_event(
            data, source=self.source, subject=subject, at=at, event_id=self.event_id(data, once_per)
        )
        await self.send(event)
        return event

    def event_id(self, data: EventData, once_per: str | None) -> UUID | None:
        return None if once_per is None else once_id(self.id_namespace, data.TYPE, once_per)

    async def send(self, event: CloudEvent[Any], *, wait: bool = False) -> None:
        """Send a ready envelope, keyed by its subject; with `wait`, until the broker has it."""
        delivery = await self.topic(event.type).send(
            key=event.subject.encode(), value=event.to_json(), headers=HEADERS
        )
        if wait:
            await delivery


def event_adapter(model: type[D]) -> TypeAdapter[CloudEvent[D]]:
    return TypeAdapter(CloudEvent[model])  # type: ignore[valid-type]


def accepted_event(
    adapter: TypeAdapter[CloudEvent[D]], key: bytes | None, value: bytes | None
) -> CloudEvent[D]:
    """The event a record holds, or ValueError (pydantic's ValidationError included) if
    its consumers must refuse it: not a valid event of the topic's type, or not keyed
    by its lead. The key must be the subject's exact bytes and the subject the data's
    lead_id: a handler stores the data under data.lead_id, on the partition the key
    chose, so a mismatch would put a lead's state where no one looks for it."""
    cloud_event = adapter.validate_json(value or b"")
    if key != cloud_event.subject.encode():
        raise ValueError("record key is not the event subject (lead_id)")
    if getattr(cloud_event.data, "lead_id", cloud_event.subject) != cloud_event.subject:
        raise ValueError("event subject is not its data's lead_id")
    return cloud_event


async def consume(
    stream: StreamT[bytes],
    model: type[D],
    handle: Callable[[CloudEvent[D]], Awaitable[None]],
    dead_letters: DeadLetters,
) -> None:
    """Hand each valid event of `stream` to `handle`; dead-letter what fails.

    A record that does not validate, or that `handle` refuses or fails on, goes to
    the DLQ with the reason; the stream goes on with the next record.
    """
    adapter = event_adapter(model)
    async for event in stream.events():
        message = event.message
        try:
            await handle(accepted_event(adapter, message.key, message.value))
        except (ValidationError, ValueError, DomainError) as refused:
            await dead_letters.send(message, refused)
        except Exception as failed:
            log.exception("event handler failed", extra={"topic": message.topic})
            await dead_letters.send(message, failed)
