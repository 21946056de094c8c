"""Faust's in-memory store, with the changelog fence (changelog_fence.py).

Its tables live only in memory, so every recovery replays the changelog from
its start; a partition read from an offset it has passed already starts its
fence again."""

from collections.abc import Callable, Iterable
from typing import Any

from faust.stores import STORES
from faust.stores.memory import Store
from faust.types import EventT

from services.runtime.changelog_fence import Fence, admitted

SCHEME = "leadflow-memory"
STORES.aliases[SCHEME] = f"{__name__}:MemoryStore"


class MemoryStore(Store[Any, Any]):
    def __post_init__(self) -> None:
        super().__post_init__()
        self._fences: dict[int, Fence] = {}
        self._read_through: dict[int, int] = {}

    def apply_changelog_batch(
        self, batch: Iterable[EventT[Any]], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        kept: list[EventT[Any]] = []
        # In offset order (see services.runtime.consumer._Consumer._read_back).
        for event in sorted(batch, key=lambda event: (event.message.partition, event.message.offset)):
            partition, offset = event.message.partition, event.message.offset
            if offset <= self._read_through.get(partition, -1):
                self._fences.pop(partition, None)  # read again from the start
            self._read_through[partition] = offset
            kept.extend(admitted(self._fences, [event]))
        super().apply_changelog_batch(kept, to_key, to_value)
