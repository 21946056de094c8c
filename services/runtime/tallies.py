"""Totals over a table, kept as it is written, so a metrics scrape reads a few
numbers instead of decoding every entry of the table.

A tally sums what each entry of the partitions this worker is active for
contributes (an order: one to its status; a deal: one to its stage, its
proposal's amount to the pipeline value). Every write through `ModelTable`
takes the replaced value's contribution away and adds the new one's, so the
tally holds only the totals, nothing per entry. When the worker's partitions
change (a rebalance, a restart), the next read rebuilds the totals with one
pass over the table: the only read of the whole table, once per rebalance
rather than once per scrape.
"""

from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from services.runtime.cluster import Cluster
from services.runtime.tables import ModelTable

M = TypeVar("M", bound=BaseModel)

Contribution = Mapping[Hashable, Any]


class Tally(Generic[M]):
    def __init__(
        self, cluster: Cluster, table: ModelTable[M], contributes: Callable[[M], Contribution]
    ) -> None:
        self._cluster = cluster
        self._table = table
        self._contributes = contributes
        self._totals: Counter[Hashable] = Counter()
        self._built_for: frozenset[Any] | None = None
        table.on_write(self._written)

    def totals(self) -> Counter[Hashable]:
        """The sums, by what was contributed to; read-only."""
        actives = frozenset(self._cluster.app.assignor.assigned_actives())
        if actives != self._built_for:
            self._totals = Counter()
            for _, value in self._cluster.local_items(self._table):
                self._totals.update(self._contributes(value))
            self._built_for = actives
        return self._totals

    def _written(self, _key: str, before: M | None, after: M) -> None:
        if self._built_for is None:
            return  # built on first read, with this write in the table
        if before is not None:
            for name, amount in self._contributes(before).items():
                self._totals[name] -= amount
                if not self._totals[name]:
                    del self._totals[name]
        self._totals.update(self._contributes(after))
