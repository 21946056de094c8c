"""Faust agents under `agent.test_context()`: no broker, events put in directly.

Publishing and dead-lettering go to in-memory fakes so a test can see what an
agent sent."""

from collections.abc import Iterator
from typing import Any

import pytest
from faust.types import Message

from schemas.events import EventData
from services.runtime.service import ServiceRuntime


class Sent:
    """What an agent published and dead-lettered during a test."""

    def __init__(self) -> None:
        self.events: list[tuple[str, EventData]] = []
        self.dead_letters: list[tuple[Message, BaseException]] = []

    def of_type(self, event_type: str) -> list[EventData]:
        return [data for _, data in self.events if event_type == data.TYPE]


@pytest.fixture
def sent() -> Sent:
    return Sent()


def fake_io(runtime: ServiceRuntime, sent: Sent, monkeypatch: pytest.MonkeyPatch) -> None:
    async def publish(data: EventData, *, subject: str, at: Any = None, once_per: str | None = None) -> None:
        sent.events.append((subject, data))

    async def dead_letter(message: Message, error: BaseException) -> None:
        sent.dead_letters.append((message, error))

    monkeypatch.setattr(runtime.publisher, "publish", publish)
    monkeypatch.setattr(runtime.dead_letters, "send", dead_letter)
    runtime.app.finalize()
    runtime.app.flow_control.resume()


def clear(*tables: Any) -> Iterator[None]:
    for table in tables:
        table.table.data.clear()
    yield
    for table in tables:
        table.table.data.clear()
