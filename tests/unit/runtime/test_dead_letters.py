"""A dead letter too big for the broker still lands, without its value."""

from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import TP, Message

from schemas import topics
from services.runtime.consumer import App
from services.runtime.deadletters import DeadLetters


class _Topic:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: list[dict[str, Any]] = []

    async def send(self, *, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> Any:
        size = len(value or b"") + sum(len(k) + len(v) for k, v in headers)
        if size > self.limit:
            raise MessageSizeTooLargeError()
        self.sent.append({"key": key, "value": value, "headers": dict(headers)})

        async def acknowledged() -> None:
            return None

        return acknowledged()


@pytest.mark.parametrize(("size", "omitted"), [(100, False), (2_000, True)])
async def test_a_dead_letter_over_the_broker_limit_keeps_its_headers_and_says_so(
    monkeypatch: pytest.MonkeyPatch, size: int, omitted: bool
) -> None:
    topic = _Topic(limit=1_500)
    letters = DeadLetters(App("dead-letters-test", broker="kafka://127.0.0.1:1"), "sales")
    monkeypatch.setattr(letters, "topic_for", lambda origin: topic)
    message = Message(
        "lead.qualified", 2, 41, 0.0, 0, [], b"lead-1", b"x" * size, None, tp=TP("lead.qualified", 2)
    )
    await letters.send(message, ValueError("not an event"))
    (letter,) = topic.sent
    assert letter["key"] == b"lead-1"
    assert letter["headers"][topics.DLQ_ORIGIN_OFFSET] == b"41"
    if omitted:
        assert letter["value"] is None
        assert letter["headers"][topics.DLQ_VALUE_OMITTED] == b"2000"
    else:
        assert letter["value"] == b"x" * size
        assert topics.DLQ_VALUE_OMITTED not in letter["headers"]
