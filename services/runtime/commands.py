"""Commands: how an HTTP write reaches the agent that owns its key.

Table changes must happen inside an agent, one record at a time per partition:
that is what makes concurrent writes to one key safe. So a route does not change
state itself; it sends a command, keyed like the state it touches, to the
service's command topic and awaits the outcome. The route runs on the worker that
owns the key (see `cluster.Cluster`), so the agent that applies the command is
in the same process and hands the outcome back through an in-memory future.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar
from uuid import uuid4

import faust
from faust.types import StreamT
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from services.runtime.deadletters import DeadLetters
from services.runtime.errors import DomainError

log = logging.getLogger(__name__)

C = TypeVar("C", bound="Command")


class Command(BaseModel):
    """Base of a service's commands; each subclass adds a `kind` literal."""

    command_id: str = Field(default_factory=lambda: str(uuid4()))

    @property
    def key(self) -> str:
        """The key of the state it changes: its record's key, so its partition's owner applies it."""
        raise NotImplementedError


class LeadCommand(Command):
    """A command on one lead's state (its lead, deal or order), keyed by lead_id."""

    lead_id: str
    # Who asked: the subject of the caller's token; None for a service's own commands.
    by: str | None = Field(default=None, max_length=256)

    @property
    def key(self) -> str:
        return self.lead_id


class CommandTimeout(Exception):
    """The command was sent but its outcome did not come back in time."""


class Commands(Generic[C]):
    def __init__(
        self,
        app: faust.App,
        model: Any,
        *,
        partitions: int,
        timeout: float,
        dead_letters: DeadLetters,
    ) -> None:
        self.topic = app.topic(
            f"{app.conf.id}-commands",
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            internal=True,
        )
        self._adapter: TypeAdapter[C] = TypeAdapter(model)
        self._timeout = timeout
        self._dead_letters = dead_letters
        self._waiting: dict[str, asyncio.Future[Any]] = {}

    async def ask(self, command: C) -> Any:
        """Send `command` keyed by its key; return what its handler returned, or raise
        the DomainError it raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[command.command_id] = future
        try:
            await self.topic.send(key=command.key.encode(), value=command.model_dump_json().encode())
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError as late:
            raise CommandTimeout(
                f"command {command.command_id} was accepted but not applied within "
                f"{self._timeout:.0f}s; it may still be applied"
            ) from late
        except asyncio.CancelledError as stopping:
            # Only the HTTP server's shutdown cancels a request (a rolling restart):
            # answer 503 so the client retries elsewhere, not the 500 of a cut request.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise CommandTimeout(
                f"the worker is stopping; command {command.command_id} may still be applied"
            ) from stopping
        finally:
            self._waiting.pop(command.command_id, None)

    async def serve(self, stream: StreamT[bytes], handle: Callable[[C], Awaitable[Any]]) -> None:
        """Apply each command of `stream` with `handle` and settle its waiting caller."""
        async for event in stream.events():
            try:
                command = self._adapter.validate_json(event.message.value or b"")
                if command.key.encode() != event.message.key:
                    # Applied here, it would change state another partition owns.
                    raise ValueError(f"record key is not the command's key {command.key!r}")
            except (ValidationError, ValueError) as invalid:
                await self._dead_letters.send(event.message, invalid)
                continue
            try:
                outcome = await handle(command)
            except DomainError as refused:
                self._settle(command.command_id, error=refused)
            except Exception as failed:
                log.exception("command failed", extra={"command": command.command_id})
                await self._dead_letters.send(event.message, failed)
                self._settle(command.command_id, error=failed)
            else:
                self._settle(command.command_id, outcome=outcome)

    def _settle(self, command_id: str, *, outcome: Any = None, error: BaseException | None = None) -> None:
        future = self._waiting.get(command_id)
        if future is None or future.done():
            # No one waits when the command was sent by a worker that has since lost
            # the partition, or by a route that does not wait (a replay): a refusal
            # must not vanish without a trace.
            if error is not None:
                log.warning("command refused with no one waiting: %s", error, extra={"command": command_id})
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(outcome)
