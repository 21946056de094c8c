"""Watching a table recovery that stops getting records.

A worker recovering its tables reads each active changelog partition up to its
highwater, and only then serves. If the records it waits for never arrive (the
fetcher passed them, or they were dropped on their way to the recovery), Faust
waits forever and only logs "No event received for active tp". Seen twice in CI
(`tests/integration/sales/test_sales_workers.py`, two workers on a loaded
machine): the first worker's active partitions 3-5 got nothing for 90 s after
the second joined, and never served.

So a partition whose recovery has not moved for `patience` seconds, with nothing
of it queued for the recovery, is read again from where its recovery stands.
Records it took already are skipped by the recovery, so reading again is
harmless; a recovery that is merely slow moves on and is left alone.
"""

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from faust.types import TP

# Far above a fetch's wait on an idle partition (fetch_max_wait_ms, at most 1.5 s).
PATIENCE_SECONDS = 10.0


@dataclass
class RecoveryWatch:
    patience: float = PATIENCE_SECONDS
    # Per partition: the recovery's offset when last seen to move, and since when.
    _since: dict[TP, tuple[int, float]] = field(default_factory=dict)

    def stalled(
        self, offsets: Mapping[TP, int], highwaters: Mapping[TP, int], queued: Set[TP], now: float
    ) -> list[TP]:
        """The partitions still short of their highwater whose recovery has not
        moved for the patience, and has nothing queued (`offsets`: the last offset
        each recovery took, -1 for none; `highwaters`: the last it must take)."""
        stalled = []
        for tp, highwater in highwaters.items():
            offset = offsets.get(tp, -1)
            seen = self._since.get(tp)
            if offset >= highwater:
                self._since.pop(tp, None)
            elif tp in queued or seen is None or seen[0] != offset:
                self._since[tp] = (offset, now)
            elif now - seen[1] >= self.patience:
                stalled.append(tp)
                self._since[tp] = (offset, now)
        for tp in set(self._since) - set(highwaters):
            del self._since[tp]
        return stalled

    def forget(self) -> None:
        """No recovery under way (or a new one starting): start over."""
        self._since.clear()
