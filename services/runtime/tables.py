"""Faust tables of pydantic models, keyed by string.

Values are stored as JSON in the changelog, so a table survives a worker restart
and can be read by a human with any Kafka tool. They are held as the JSON bytes
pydantic writes (Faust's raw codec): one encode per write, one decode per read,
and the in-memory store keeps compact bytes rather than dicts.

A table of a frozen model also remembers the last value it decoded, with its
bytes: a handler's read-modify-write decodes once, not again for the value it
replaces (the tallies' before-value), and a second read of a key whose bytes are
unchanged is not decoded either. Handing out one decoded value twice is only
safe because a frozen model cannot be changed in place.
"""

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import faust
from faust.tables import TableManager
from faust.types import TableT
from pydantic import BaseModel, TypeAdapter

from services.runtime.errors import Unprocessable

M = TypeVar("M", bound=BaseModel)

# The broker refuses a record over message.max.bytes (1 MiB by default). A value
# past it could never reach the changelog and the worker would stop on it, so it
# is refused before it is stored: a command gets a 422, an event goes to the DLQ.
MAX_VALUE_BYTES = 900_000


class PromptTableManager(TableManager):
    """Faust's table manager, without the second it sleeps before it starts.

    Faust waits a second for tables still to be defined; ours are all made when the
    service's modules import, before the worker starts, and every (re)start of a
    worker, a rolling update's included, waited that second for nothing."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class ModelTable(Generic[M]):
    def __init__(
        self,
        app: faust.App,
        name: str,
        model: type[M],
        *,
        help: str,  # noqa: A002 - Faust's own argument name
        everywhere: bool = False,
    ) -> None:
        """`everywhere`: a GlobalTable, every worker holds every key (small reference data)."""
        kind = app.GlobalTable if everywhere else app.Table
        self._json = TypeAdapter(model)
        self._remembers = bool(model.model_config.get("frozen"))
        self._last: tuple[bytes, bytes, M] | None = None  # key, its stored bytes, decoded
        self._watchers: list[Callable[[str, M | None, M], None]] = []
        # A copy: Faust's RocksDB store pops keys from the options it is given.
        options = dict(getattr(app, "table_options", {}))
        # Keys are raw bytes on the changelog, as on the event topics, so a key
        # hashes to the same partition number everywhere (see cluster.Cluster).
        self.table: TableT[bytes, bytes] = kind(
            name, key_type=bytes, value_type=bytes, default=None, help=help, options=options
        )

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, key: str) -> M | None:
        return self._decoded(key.encode())

    def _decoded(self, key: bytes) -> M | None:
        raw = self.table.get(key)
        if raw is None:
            return None
        last = self._last
        # Equal bytes, not the same object: RocksDB hands out a new one per read.
        if last is not None and last[0] == key and last[1] == raw:
            return last[2]
        value = self._json.validate_json(raw)
        if self._remembers:
            self._last = (key, raw, value)
        return value

    def __setitem__(self, key: str, value: M) -> None:
        raw = self._json.dump_json(value)
        if len(raw) > MAX_VALUE_BYTES:
            raise Unprocessable(
                f"{self.name} {key!r} would be {len(raw):,} bytes; a stored value may be "
                f"at most {MAX_VALUE_BYTES:,} (Kafka's record limit)"
            )
        stored_key = key.encode()
        before = self._decoded(stored_key) if self._watchers else None
        self.table[stored_key] = raw
        # Not `value`: model_copy(update=...) does not validate, and a read must
        # always give what the stored bytes decode to.
        self._last = None
        for watcher in self._watchers:
            watcher(key, before, value)

    def __delitem__(self, key: str) -> None:
        """Remove `key` (a tombstone on the changelog); no error if it is not there."""
        self._last = None
        self.table.pop(key.encode(), None)

    def on_write(self, watcher: Callable[[str, M | None, M], None]) -> None:
        """Call `watcher(key, before, after)` after every write through this table
        (`before`: the value it replaced, None if there was none)."""
        self._watchers.append(watcher)

    def __contains__(self, key: str) -> bool:
        return key.encode() in self.table

    def __iter__(self) -> Iterator[str]:
        """Every key held, without decoding a value."""
        for key in list(self.table.keys()):
            yield key.decode()

    def items(self) -> Iterator[tuple[str, M]]:
        for key, raw in list(self.table.items()):
            yield key.decode(), self._json.validate_json(raw)

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()
