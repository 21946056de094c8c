"""Faust tables of pydantic models, keyed by string.

Values are stored as JSON in the changelog, so a table survives a worker restart
and can be read by a human with any Kafka tool. They are held as the JSON bytes
pydantic writes (Faust's raw codec): one encode per write, one decode per read,
and the in-memory store keeps compact bytes rather than dicts.
"""

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import faust
from faust.types import TableT
from pydantic import BaseModel, TypeAdapter

from services.runtime.errors import Unprocessable

M = TypeVar("M", bound=BaseModel)

# The broker refuses a record over message.max.bytes (1 MiB by default). A value
# past it could never reach the changelog and the worker would stop on it, so it
# is refused before it is stored: a command gets a 422, an event goes to the DLQ.
MAX_VALUE_BYTES = 900_000


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
        self._watchers: list[Callable[[str, M | None, M], None]] = []
        # Keys are raw bytes on the changelog, as on the event topics, so a key
        # hashes to the same partition number everywhere (see cluster.Cluster).
        self.table: TableT[bytes, bytes] = kind(
            name, key_type=bytes, value_type=bytes, default=None, help=help
        )

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, key: str) -> M | None:
        raw = self.table.get(key.encode())
        return None if raw is None else self._json.validate_json(raw)

    def __setitem__(self, key: str, value: M) -> None:
        raw = self._json.dump_json(value)
        if len(raw) > MAX_VALUE_BYTES:
            raise Unprocessable(
                f"{self.name} {key!r} would be {len(raw):,} bytes; a stored value may be "
                f"at most {MAX_VALUE_BYTES:,} (Kafka's record limit)"
            )
        before = self.get(key) if self._watchers else None
        self.table[key.encode()] = raw
        for watcher in self._watchers:
            watcher(key, before, value)

    def __delitem__(self, key: str) -> None:
        """Remove `key` (a tombstone on the changelog); no error if it is not there."""
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
