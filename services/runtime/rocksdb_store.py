"""Faust's RocksDB store, without a full garbage collection per table on every
rebalance and at shutdown.

Faust never closes a partition's database: it drops its reference and runs
`gc.collect()`, so that a database caught in a reference cycle still releases its
file lock before the partition is opened again. It does so once per table on
every revocation and on stop, 0.1-0.4 s each on a worker's heap, while every
partition waits: about a second per rebalance for sales' four tables, and as long
again before a stopping worker hands its partitions over.

Dropping the reference frees a database at once unless a cycle holds it. So here
the collection runs only where it is needed: when a partition's database is
found still locked by this process on opening. Then it is collected and opened
again at once, rather than after Faust's 1 s retry. At shutdown nothing reopens,
and the process's exit frees what is left (RocksDB's write-ahead log holds every
write).

A table write reaches the partition's database at once, and its changelog record
a moment later, when the producer sends it. A worker killed in between (SIGKILL,
OOM, a node lost) keeps on its volume a value the changelog never got; the record
that made it is delivered again, finds it stored, and does not write it again, so
the changelog, and every standby and later owner of the partition, never holds
it. The chaos suite found exactly that: an order served by no worker after its
order.created went out (seed 912). So a worker
trusts its databases only after a clean stop (`mark_stopped_cleanly`, once the
producer flushed every changelog record); after any other stop it rebuilds them
from the changelogs (`discard_unless_stopped_cleanly`).
"""

import gc
import shutil
from collections.abc import Set
from pathlib import Path
from typing import cast

from faust.stores import STORES
from faust.stores.rocksdb import Store
from faust.types import TP, CollectionT
from rocksdict import Rdict

# In the tables' directory while the databases there match their changelogs.
STOPPED_CLEANLY = "stopped-cleanly"

# Faust finds a store by its URL's scheme.
SCHEME = "leadflow-rocksdb"
STORES.aliases[SCHEME] = f"{__name__}:RocksDBStore"


def is_rocksdb(store: str) -> bool:
    """Whether a `LEADFLOW_STORE` keeps tables in RocksDB."""
    return store.partition(":")[0] == "rocksdb"


def faust_store(store: str) -> str:
    """The store URL to give Faust for a `LEADFLOW_STORE`: ours in place of rocksdb."""
    return f"{SCHEME}:{store.partition(':')[2]}" if is_rocksdb(store) else store


class RocksDBStore(Store):
    async def stop(self) -> None:
        self.logger.info("Closing rocksdb on stop")
        self._dbs.clear()

    def revoke_partitions(self, table: CollectionT, tps: Set[TP]) -> None:
        for tp in tps:
            if tp.topic in table.changelog_topic.topics and self._dbs.pop(tp.partition, None) is not None:
                self.logger.info("closing db %s partition %s", tp.topic, tp.partition)

    def _open_for_partition(self, partition: int) -> Rdict:
        try:
            return cast(Rdict, super()._open_for_partition(partition))
        except Exception as error:  # rocksdict raises a bare Exception
            if "lock" not in repr(error):
                raise
            # Still held by an earlier database of this partition caught in a cycle.
            gc.collect()
            return cast(Rdict, super()._open_for_partition(partition))


def discard_unless_stopped_cleanly(tabledir: Path) -> list[Path]:
    """Remove the partitions' databases in `tabledir` unless the last worker using
    them stopped cleanly; return those removed. Either way the mark is gone, so a
    crash of this worker leaves none."""
    mark = tabledir / STOPPED_CLEANLY
    if mark.exists():
        mark.unlink()
        return []
    removed = sorted(tabledir.glob("*.db")) if tabledir.is_dir() else []
    for database in removed:
        shutil.rmtree(database)
    return removed


def mark_stopped_cleanly(tabledir: Path) -> None:
    """After a clean stop: every write in the databases is on its changelog."""
    tabledir.mkdir(parents=True, exist_ok=True)
    (tabledir / STOPPED_CLEANLY).touch()
