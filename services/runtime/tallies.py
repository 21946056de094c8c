"""Totals over a table, kept as it is written, so a metrics scrape or a report
reads a few numbers instead of decoding every entry of the table.

A tally sums what each entry of the partitions this worker is active for
contributes (an order: one to its status; a deal: one to its stage, its
proposal's amount to the pipeline value), and may keep the latest of a time per
name as well. Every write through `ModelTable` takes the replaced value's
contribution away and adds the new one's, so the tally holds only the totals,
nothing per entry. After every rebalance (partitions moved, or the same ones
restored from a changelog that another worker wrote meanwhile), the next read
rebuilds the totals with one pass over the table: the only read of the whole
table, once per rebalance rather than once per read. While a rebalance is under
way, the totals are the last ones built, and `share` refuses to answer.

Names may settle as time passes (`Settling`): a count per due time joins the one
count of those past due once its time has gone by, so a tally of deadlines keeps
a name per deadline still to come, not one per entry ever written.
"""

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from services.runtime.cluster import Cluster
from services.runtime.tables import ModelTable

M = TypeVar("M", bound=BaseModel)

Contribution = Mapping[Hashable, Any]


@dataclass(frozen=True)
class Settling:
    """`name(n, now)`: what a contribution named `n` is summed under at `now`. It must
    only merge names, and a name once merged must stay merged as time goes on, so
    that taking an entry's contribution away later still cancels what it added."""

    name: Callable[[Hashable, datetime], Hashable]
    now: Callable[[], datetime]


@dataclass(frozen=True)
class Share:
    """This worker's totals, and the partitions of the table they were summed over."""

    partitions: frozenset[int]
    totals: Mapping[Hashable, Any]
    latest: Mapping[Hashable, datetime]


class Tally(Generic[M]):
    def __init__(
        self,
        cluster: Cluster,
        table: ModelTable[M],
        contributes: Callable[[M], Contribution],
        *,
        latest: Callable[[M], Mapping[Hashable, datetime]] | None = None,
        settling: Settling | None = None,
    ) -> None:
        """`latest(entry)`: times to keep the latest of, by name (entries' times only grow)."""
        self._cluster = cluster
        self._table = table
        self._contributes = contributes
        self._times = latest
        self._settling = settling
        self._settled_size = 0  # how many names the totals held when last settled
        self._totals: Counter[Hashable] = Counter()
        self._latest: dict[Hashable, datetime] = {}
        self._partitions: frozenset[int] = frozenset()
        self._built_after: int | None = None  # the rebalance the totals were built after
        table.on_write(self._written)

    def totals(self) -> Counter[Hashable]:
        """The sums, by what was contributed to; read-only."""
        self._build()
        self._settle()
        return self._totals

    def share(self) -> Share:
        """The totals with the partitions they cover; Unavailable while partitions
        move or the worker stops."""
        self._cluster.check_serving()
        self._build()
        self._settle()
        return Share(self._partitions, self._totals, self._latest)

    def _build(self) -> None:
        """Rebuild if a rebalance ended since the last build; not while one is under way."""
        app = self._cluster.app
        if app.rebalancing:
            return
        if self._built_after != app.rebalancing_count:
            self._totals, self._latest = Counter(), {}
            self._partitions = self._cluster.active_partitions(self._table)
            for _, value in self._cluster.local_items(self._table):
                self._add(self._contributes(value))
                self._keep_latest(value)
            self._built_after = app.rebalancing_count
            self._settled_size = len(self._totals)

    def _named(self, adds: Contribution) -> Iterable[tuple[Hashable, Any]]:
        """`adds` under the names they are summed under now."""
        if self._settling is None:
            return adds.items()
        now, name_at = self._settling.now(), self._settling.name
        return [(name_at(name, now), amount) for name, amount in adds.items()]

    def _add(self, adds: Contribution) -> None:
        for name, amount in self._named(adds):
            self._totals[name] += amount

    def _take_away(self, adds: Contribution) -> None:
        for name, amount in self._named(adds):
            self._totals[name] -= amount
            if not self._totals[name]:
                del self._totals[name]

    def _settle(self) -> None:
        """Merge the names whose time has come, and drop the sums that came to nothing."""
        if self._settling is None:
            return
        now, name_at, merged = self._settling.now(), self._settling.name, Counter[Hashable]()
        for name, amount in self._totals.items():
            merged[name_at(name, now)] += amount
        self._totals = Counter({name: amount for name, amount in merged.items() if amount})
        self._settled_size = len(self._totals)

    def _keep_latest(self, value: M) -> None:
        if self._times is None:
            return
        for name, at in self._times(value).items():
            if name not in self._latest or at > self._latest[name]:
                self._latest[name] = at

    def _written(self, _key: str, before: M | None, after: M) -> None:
        if self._built_after is None:
            return  # built on first read, with this write in the table
        if before is not None:
            self._take_away(self._contributes(before))
        self._add(self._contributes(after))
        self._keep_latest(after)
        # Unread, names whose time has come would pile up: settle once they have doubled.
        if self._settling is not None and len(self._totals) > 2 * max(self._settled_size, 32):
            self._settle()
