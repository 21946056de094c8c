"""Counts over a table, kept as it is written, so a metrics scrape reads a few
numbers instead of decoding every entry of the table.

A tally counts the entries of the partitions this worker is active for, by a
label the service derives from each entry (an order's status). Every write
through `ModelTable` updates it. When the worker's partitions change (a
rebalance, a restart), the next read rebuilds it with one pass over the table:
that pass is the only read of the whole table, once per rebalance rather than
once per scrape.
"""

from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from services.runtime.cluster import Cluster
from services.runtime.tables import ModelTable

M = TypeVar("M", bound=BaseModel)


class Tally(Generic[M]):
    def __init__(self, cluster: Cluster, table: ModelTable[M], label: Callable[[M], Hashable]) -> None:
        self._cluster = cluster
        self._table = table
        self._label = label
        self._labels: dict[str, Hashable] = {}  # each counted entry's label
        self._counts: Counter[Hashable] = Counter()
        self._built_for: frozenset[Any] | None = None
        table.on_write(self._written)

    def counts(self) -> Counter[Hashable]:
        actives = frozenset(self._cluster.app.assignor.assigned_actives())
        if actives != self._built_for:
            self._labels = {key: self._label(value) for key, value in self._cluster.local_items(self._table)}
            self._counts = Counter(self._labels.values())
            self._built_for = actives
        return self._counts

    def _written(self, key: str, value: M) -> None:
        if self._built_for is None:
            return  # built on first read, with this write in the table
        label = self._label(value)
        if key in self._labels:
            self._counts[self._labels[key]] -= 1
        self._labels[key] = label
        self._counts[label] += 1
