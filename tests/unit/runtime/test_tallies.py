"""Tallies: counts kept as a table is written, rebuilt when partitions move."""

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from services.runtime.tallies import Tally


class Order(BaseModel):
    status: str
    total: Decimal = Decimal(0)


class FakeTable:
    """What a tally needs of a ModelTable: its entries, and a call on every write."""

    def __init__(self) -> None:
        self.entries: dict[str, Order] = {}
        self.watchers: list[Callable[[str, Order | None, Order], None]] = []

    def on_write(self, watcher: Callable[[str, Order | None, Order], None]) -> None:
        self.watchers.append(watcher)

    def __setitem__(self, key: str, value: Order) -> None:
        before = self.entries.get(key)
        self.entries[key] = value
        for watcher in self.watchers:
            watcher(key, before, value)


class FakeCluster:
    """The worker's active partitions, and its share of the table (here: all of it)."""

    def __init__(self) -> None:
        self.app = self
        self.assignor = self
        self.actives: set[Any] = {("orders", 0)}
        self.reads = 0

    def assigned_actives(self) -> set[Any]:
        return self.actives

    def local_items(self, table: FakeTable) -> Iterator[tuple[str, Order]]:
        self.reads += 1
        return iter(list(table.entries.items()))


def tally() -> tuple[FakeTable, FakeCluster, Tally[Order]]:
    table, cluster = FakeTable(), FakeCluster()
    return table, cluster, Tally(cluster, table, lambda order: {order.status: 1})  # type: ignore[arg-type]


def test_writes_move_the_counts_without_reading_the_table_again() -> None:
    table, cluster, counted = tally()
    table["a"] = Order(status="created")
    assert counted.totals() == {"created": 1}
    table["b"] = Order(status="created")
    table["a"] = Order(status="confirmed")
    table["a"] = Order(status="fulfilled")
    assert counted.totals() == {"created": 1, "fulfilled": 1}
    assert cluster.reads == 1


def test_new_partitions_rebuild_the_counts_from_the_table_once() -> None:
    table, cluster, counted = tally()
    table["a"] = Order(status="created")
    counted.totals()
    table.entries["c"] = Order(status="cancelled")  # recovered from the changelog, not written
    cluster.actives = {("orders", 0), ("orders", 1)}
    assert counted.totals() == {"created": 1, "cancelled": 1}
    assert counted.totals() == {"created": 1, "cancelled": 1}
    assert cluster.reads == 2


def test_amounts_are_summed_and_a_replaced_entry_takes_its_old_amount_away() -> None:
    table, cluster = FakeTable(), FakeCluster()
    value: Tally[Order] = Tally(cluster, table, lambda order: {order.status: order.total})  # type: ignore[arg-type]
    value.totals()
    table["a"] = Order(status="created", total=Decimal("10.50"))
    table["b"] = Order(status="created", total=Decimal("4.50"))
    table["a"] = Order(status="confirmed", total=Decimal("10.50"))
    assert value.totals() == {"created": Decimal("4.50"), "confirmed": Decimal("10.50")}
    table["b"] = Order(status="confirmed", total=Decimal("4.50"))
    assert value.totals() == {"confirmed": Decimal("15.00")}
