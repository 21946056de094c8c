"""Commands: an HTTP write's outcome comes back from the agent that applied it."""

import asyncio
from typing import Any, Literal

import faust
import pytest
from faust.types import Message

from services.runtime.commands import Commands, CommandTimeout, LeadCommand
from services.runtime.errors import Conflict


class Bump(LeadCommand):
    kind: Literal["bump"] = "bump"
    lead_id: str = "k"
    step: int


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[Message, BaseException]] = []

    async def send(self, message: Message, error: BaseException) -> None:
        self.sent.append((message, error))


@pytest.fixture
def channel() -> tuple[faust.App, Commands[Bump], FakeDeadLetters]:
    app = faust.App("test-commands", store="memory://", value_serializer="raw", key_serializer="raw")
    dead = FakeDeadLetters()
    commands: Commands[Bump] = Commands(app, Bump, partitions=1, timeout=1, dead_letters=dead)  # type: ignore[arg-type]
    app.finalize()
    app.flow_control.resume()
    return app, commands, dead


async def handle(command: Bump) -> int:
    if command.step < 0:
        raise Conflict("cannot bump backwards", field="step")
    if command.step == 0:
        raise RuntimeError("boom")
    return command.step * 2


async def run(app: faust.App, commands: Commands[Bump], *values: bytes, key: bytes = b"k") -> None:
    @app.agent(commands.topic)
    async def apply(stream: Any) -> None:
        await commands.serve(stream, handle)

    async with apply.test_context() as agent:
        for value in values:
            await agent.put(key=key, value=value)


def waiting(commands: Commands[Bump], command: Bump) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    commands._waiting[command.command_id] = future
    return future


async def test_the_handlers_outcome_settles_the_waiting_caller(channel: Any) -> None:
    app, commands, dead = channel
    command = Bump(step=21)
    future = waiting(commands, command)
    await run(app, commands, command.model_dump_json().encode())
    assert future.result() == 42
    assert dead.sent == []


async def test_a_domain_refusal_reaches_the_caller_and_no_dead_letter_is_written(channel: Any) -> None:
    app, commands, dead = channel
    command = Bump(step=-1)
    future = waiting(commands, command)
    await run(app, commands, command.model_dump_json().encode())
    with pytest.raises(Conflict, match="backwards"):
        future.result()
    assert dead.sent == []


async def test_a_failing_handler_dead_letters_the_command_and_tells_the_caller(channel: Any) -> None:
    app, commands, dead = channel
    command = Bump(step=0)
    future = waiting(commands, command)
    await run(app, commands, command.model_dump_json().encode(), Bump(step=1).model_dump_json().encode())
    with pytest.raises(RuntimeError, match="boom"):
        future.result()
    [(message, error)] = dead.sent
    assert message.value == command.model_dump_json().encode()
    assert str(error) == "boom"


async def test_a_refusal_no_one_waits_for_is_logged(channel: Any, caplog: pytest.LogCaptureFixture) -> None:
    # A route that does not wait (webhooks' replay), or a sender that lost the
    # partition: the refusal must still leave a trace.
    app, commands, dead = channel
    command = Bump(step=-1)
    with caplog.at_level("WARNING", logger="services.runtime.commands"):
        await run(app, commands, command.model_dump_json().encode(), Bump(step=3).model_dump_json().encode())
    [warning] = [r for r in caplog.records if r.name == "services.runtime.commands"]
    assert "cannot bump backwards" in warning.getMessage()
    assert warning.command == command.command_id  # type: ignore[attr-defined]
    assert dead.sent == []


async def test_an_unreadable_command_is_dead_lettered_and_the_stream_goes_on(channel: Any) -> None:
    app, commands, dead = channel
    command = Bump(step=2)
    future = waiting(commands, command)
    await run(app, commands, b"not json", command.model_dump_json().encode())
    assert future.result() == 4
    [(message, _)] = dead.sent
    assert message.value == b"not json"


async def test_a_command_keyed_other_than_its_lead_is_dead_lettered_unapplied(channel: Any) -> None:
    # Applied, it would change a lead whose partition (and table entry) another worker owns.
    app, commands, dead = channel
    command = Bump(step=2, lead_id="lead-1")
    future = waiting(commands, command)
    await run(app, commands, command.model_dump_json().encode(), key=b"lead-2")
    assert not future.done()
    [(message, error)] = dead.sent
    assert message.key == b"lead-2"
    assert "'lead-1'" in str(error)


async def test_a_request_cut_by_the_servers_shutdown_is_told_to_retry(channel: Any) -> None:
    # uvicorn cancels requests still running when its graceful shutdown runs out; the
    # caller must get a 503 (CommandTimeout) to retry, not the 500 of a cancelled task.
    _, commands, _ = channel
    sent = asyncio.Event()

    async def send(**_: Any) -> None:
        sent.set()

    commands.topic.send = send
    asking = asyncio.ensure_future(commands.ask(Bump(step=1)))
    await sent.wait()
    asking.cancel()
    with pytest.raises(CommandTimeout, match="stopping"):
        await asking
    assert commands._waiting == {}
