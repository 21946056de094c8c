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

Each partition's database also keeps its changelog fence beside the persisted
offset, so a replay that goes on from there still skips a past owner's late
writes (changelog_fence.py).
"""

import gc
import shutil
import time
from collections.abc import Callable, Iterable, Set
from pathlib import Path
from typing import Any, cast

from faust.stores import STORES
from faust.stores.rocksdb import Store
from faust.types import TP, CollectionT, EventT
from rocksdict import Rdict, WriteBatch

from services.runtime import memory_store
from services.runtime.changelog_fence import Fence, admitted

# In the tables' directory while the databases there match their changelogs.
STOPPED_CLEANLY = "stopped-cleanly"

# Faust finds a store by its URL's scheme.
SCHEME = "leadflow-rocksdb"
STORES.aliases[SCHEME] = f"{__name__}:RocksDBStore"


def is_rocksdb(store: str) -> bool:
    """Whether a `LEADFLOW_STORE` keeps tables in RocksDB."""
    return store.partition(":")[0] == "rocksdb"


def faust_store(store: str) -> str:
    """The store URL to give Faust for a `LEADFLOW_STORE`: ours in place of its own."""
    scheme, _, rest = store.partition(":")
    ours = {"rocksdb": SCHEME, "memory": memory_store.SCHEME}.get(scheme, scheme)
    return f"{ours}:{rest}"


class RocksDBStore(Store):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per partition, the changelog fence its database holds (changelog_fence.py),
        # kept beside the persisted offset: "<offset> <fence>".
        self._fences: dict[int, Fence] = {}

    async def stop(self) -> None:
        self.logger.info("Closing rocksdb on stop")
        self._dbs.clear()
        self._fences.clear()

    def revoke_partitions(self, table: CollectionT, tps: Set[TP]) -> None:
        for tp in tps:
            if tp.topic in table.changelog_topic.topics and self._dbs.pop(tp.partition, None) is not None:
                self._fences.pop(tp.partition, None)
                self.logger.info("closing db %s partition %s", tp.topic, tp.partition)

    def _read_offset_key(self, partition: int) -> tuple[int | None, Fence]:
        raw = self._db_for_partition(partition).get(self.offset_key)
        if raw is None:
            return None, Fence()
        offset, _, fence = bytes(raw).decode().partition(" ")
        return int(offset), Fence.decode(fence) if fence else Fence()

    def _fence(self, partition: int) -> Fence:
        if partition not in self._fences:
            self._fences[partition] = self._read_offset_key(partition)[1]
        return self._fences[partition]

    def _write_offset_key(self, partition: int, offset: int) -> None:
        value = f"{offset} {self._fence(partition).encode()}"
        self._db_for_partition(partition).put(self.offset_key, value.encode())

    def persisted_offset(self, tp: TP) -> int | None:
        return self._read_offset_key(tp.partition)[0]

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        # A changelog record of this worker, the partition's owner, was acknowledged.
        now_ms = round(time.time() * 1000)
        self._fences[tp.partition] = self._fence(tp.partition).after(self.app.consumer_generation_id, now_ms)
        self._write_offset_key(tp.partition, offset)

    def apply_changelog_batch(
        self, batch: Iterable[EventT[Any]], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        """Faust's, but a record the partition's fence refuses is read, not applied."""
        events = list(batch)
        read_through: dict[int, int] = {}
        for event in events:
            message = event.message
            read_through[message.partition] = max(message.offset, read_through.get(message.partition, -1))
            self._fence(message.partition)
        writes: dict[int, WriteBatch] = {}
        for event in admitted(self._fences, events):
            message = event.message
            write = writes.setdefault(message.partition, WriteBatch(raw_mode=True))
            key = cast(bytes, message.key)
            if message.value is None:
                write.delete(key)
            else:
                write.put(key, message.value)
        for partition, write in writes.items():
            self._db_for_partition(partition).write(write)
        for partition, offset in read_through.items():
            self._write_offset_key(partition, offset)

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
