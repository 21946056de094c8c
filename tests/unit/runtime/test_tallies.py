"""Tallies: counts kept as a table is written, rebuilt after every rebalance."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from services.runtime.cluster import Unavailable
from services.runtime.tallies import Settling, Tally


class Order(BaseModel):
    status: str
    total: Decimal = Decimal(0)
    at: datetime = datetime(2026, 3, 1, tzinfo=UTC)


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
    """The worker's rebalances, active partitions and its share of the table (here: all of it)."""

    def __init__(self) -> None:
        self.app = self
        self.rebalancing = False
        self.rebalancing_count = 0
        self.actives = frozenset({0})
        self.reads = 0

    def rebalance(self, actives: set[int]) -> None:
        self.rebalancing_count += 1
        self.actives = frozenset(actives)

    def active_partitions(self, table: FakeTable) -> frozenset[int]:
        return self.actives

    def check_serving(self) -> None:
        if self.rebalancing:
            raise Unavailable("partitions are being reassigned")

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
    cluster.rebalance({0, 1})
    assert counted.totals() == {"created": 1, "cancelled": 1}
    assert counted.totals() == {"created": 1, "cancelled": 1}
    assert cluster.reads == 2
    assert counted.share().partitions == {0, 1}


def test_the_same_partitions_back_after_a_rebalance_are_counted_again() -> None:
    # A worker frozen past its session (a zombie) gets its partitions back after
    # another worker wrote to them: the table was restored, not written through.
    table, cluster, counted = tally()
    table["a"] = Order(status="created")
    counted.totals()
    table.entries["a"] = Order(status="fulfilled")
    cluster.rebalance({0})
    assert counted.totals() == {"fulfilled": 1}


def test_while_partitions_move_the_counts_are_not_rebuilt_nor_shared() -> None:
    table, cluster, counted = tally()
    table["a"] = Order(status="created")
    counted.totals()
    cluster.rebalance({0, 1})
    cluster.rebalancing = True
    table.entries["c"] = Order(status="cancelled")  # half recovered
    assert counted.totals() == {"created": 1}  # the last ones built, for a metrics scrape
    with pytest.raises(Unavailable):
        counted.share()
    cluster.rebalancing = False
    assert counted.share().totals == {"created": 1, "cancelled": 1}


def test_the_latest_time_per_name_is_kept_as_entries_are_written() -> None:
    table, cluster = FakeTable(), FakeCluster()

    def at(order: Order) -> dict[Any, datetime]:
        return {order.status: order.at}

    counted: Tally[Order] = Tally(cluster, table, lambda o: {o.status: 1}, latest=at)  # type: ignore[arg-type]
    later = datetime(2026, 3, 2, tzinfo=UTC)
    table["a"] = Order(status="created", at=later)
    assert counted.share().latest == {"created": later}
    table["b"] = Order(status="created")  # earlier: the latest stays
    table["c"] = Order(status="confirmed")
    assert counted.share().latest == {"created": later, "confirmed": datetime(2026, 3, 1, tzinfo=UTC)}
    cluster.rebalance({0})
    assert counted.share().latest == {"created": later, "confirmed": datetime(2026, 3, 1, tzinfo=UTC)}


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


class Deadlines:
    """A tally of orders by the day they fall due, where days gone by settle into one
    count: its clock moves as a test says."""

    PAST = datetime.min.replace(tzinfo=UTC)

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=UTC)
        self.table, self.cluster = FakeTable(), FakeCluster()
        self.tally: Tally[Order] = Tally(
            self.cluster,  # type: ignore[arg-type]
            self.table,  # type: ignore[arg-type]
            lambda order: {("due", order.at): 1},
            settling=Settling(self.settled, lambda: self.now),
        )

    def settled(self, name: Any, now: datetime) -> Any:
        kind, due = name
        return (kind, self.PAST) if due < now else name

    def due_in(self, days: int) -> Order:
        return Order(status="created", at=self.now + timedelta(days=days))


def test_names_whose_time_came_settle_into_one_so_the_totals_stay_small() -> None:
    deadlines = Deadlines()
    deadlines.tally.totals()
    for n in range(10_000):
        deadlines.table[f"o{n}"] = deadlines.due_in(1)
        deadlines.now += timedelta(hours=1)
    # Never read meanwhile, yet a name per deadline still to come, and one for the rest.
    assert len(deadlines.tally._totals) <= 2 * 32 + 1
    totals = deadlines.tally.totals()
    assert totals[("due", Deadlines.PAST)] == 10_000 - 24
    assert len(totals) == 25
    assert sum(totals.values()) == 10_000


def test_an_entry_replaced_after_its_time_came_takes_away_what_it_added() -> None:
    deadlines = Deadlines()
    deadlines.tally.totals()
    deadlines.table["a"] = deadlines.due_in(1)
    deadlines.table["b"] = deadlines.due_in(2)
    deadlines.now += timedelta(days=3)
    deadlines.table["a"] = deadlines.due_in(1)  # added under a time to come, taken away once past
    expected = {("due", Deadlines.PAST): 1, ("due", deadlines.now + timedelta(days=1)): 1}
    assert deadlines.tally.totals() == expected
    deadlines.cluster.rebalance({0})  # rebuilt from the table: the same totals
    assert deadlines.tally.totals() == expected
