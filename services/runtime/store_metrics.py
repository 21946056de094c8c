"""What a worker's RocksDB tables hold in memory, as RocksDB itself counts it.

Faust opens one RocksDB database per table partition (standbys included), each
with its own write buffers and block cache (bounded by the `rocksdb_*_mib`
settings). Their memory is off the Python heap, so only RocksDB can say how much
of a worker's RSS is theirs: an operator sizing a pod, and the soak judging
whether RSS grows beyond what the data explains, read it here. A scrape asks each
open database for three of its properties; nothing is kept between scrapes.
"""

from collections.abc import Iterator
from weakref import WeakSet

from faust import App
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rocksdict import DbClosedError

# RocksDB's own names for what it holds in memory, by the label they get here.
PROPERTIES = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block_cache": "rocksdb.block-cache-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",
}


def _family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "leadflow_table_store_memory_bytes",
        "Memory of the worker's RocksDB table stores, all partitions (standbys included), by table and kind:"
        " memtables (write buffers), block_cache, table_readers (indexes and filters). Absent in memory.",
        labels=["table", "kind"],
    )


class StoreMemory(Collector):
    def __init__(self) -> None:
        self.apps: WeakSet[App] = WeakSet()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield _family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = _family()
        for app in list(self.apps):
            for name, table in list(app.tables.items()):
                databases = getattr(table.data, "_dbs", None)  # Faust's RocksDB store: one per partition
                if databases is None:
                    continue
                totals = dict.fromkeys(PROPERTIES, 0)
                for db in list(databases.values()):
                    for kind, prop in PROPERTIES.items():
                        totals[kind] += _property(db, prop)
                for kind, amount in totals.items():
                    family.add_metric([name, kind], amount)
        yield family


def _property(db: object, name: str) -> int:
    try:
        value = db.property_int_value(name)  # type: ignore[attr-defined]
    except DbClosedError:  # a partition's database closed by a rebalance meanwhile
        return 0
    return int(value or 0)


_collector: StoreMemory | None = None


def watch_store_memory(app: App) -> None:
    """Report `app`'s RocksDB table memory on the default registry's /metrics."""
    global _collector
    if _collector is None:
        _collector = StoreMemory()
        REGISTRY.register(_collector)
    _collector.apps.add(app)
