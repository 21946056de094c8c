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
OOM, a node lost) kept on its volume a value the changelog never got; the record
that made it was delivered again, found it stored, and did not write it again, so
the changelog, and every standby and later owner of the partition, never held
it. The chaos suite found exactly that: an order served by no worker after its
order.created went out (seed 912). So a write keeps, in the same database and
the same atomic batch, the value it replaced until its changelog record is
acknowledged (`before` + key); the acknowledgement removes it with the same
batch that moves the persisted offset. A worker starting after a stop that was
not clean puts those values back (`restore_writes_in_flight`) and replays the
changelog from the persisted offset, which brings back every write that did
reach it. Only the writes in flight are undone: a restart does not replay what
the database already holds (rebuilding it all took as long as a replay of the
whole changelog).

Each partition's database also keeps its changelog fence beside the persisted
offset, so a replay that goes on from there still skips a past owner's late
writes (changelog_fence.py).
"""

import gc
from collections.abc import Callable, Iterable, Iterator, Set
from pathlib import Path
from typing import Any, cast

from faust.stores import STORES
from faust.stores.rocksdb import Store
from faust.streams import current_event
from faust.types import TP, CollectionT, EventT
from rocksdict import Rdict, WriteBatch

from services.runtime import memory_store
from services.runtime.changelog_fence import Fence, admitted

# Our own keys in a partition's database, hidden from the table: `BEFORE` + key
# holds the value a write in flight replaced, NOTHING or SOMETHING + its bytes.
OURS = b"__leadflow\x00"
BEFORE = OURS + b"before__"
NOTHING, SOMETHING = b"\x00", b"\x01"

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
        # Writes whose changelog record is not acknowledged yet, per partition and key.
        self._in_flight: dict[tuple[int, bytes], int] = {}
        # Per partition, the changelog offset through which the database holds every
        # record (see `_follows`); -2 once a run of acknowledgements broke.
        self._through: dict[int, int] = {}

    def _set(self, key: bytes, value: bytes | None) -> None:
        event = current_event()
        assert event is not None  # a table is written by an agent, while it handles an event
        partition = event.message.partition
        self._key_index[key] = partition
        self._write(partition, key, value)

    def _del(self, key: bytes) -> None:
        event = current_event()
        assert event is not None
        self._write(event.message.partition, key, None)

    def _write(self, partition: int, key: bytes, value: bytes | None) -> None:
        db = self._db_for_partition(partition)
        write = WriteBatch(raw_mode=True)
        in_flight = self._in_flight.get((partition, key), 0)
        if not in_flight:
            replaced = db.get(key)
            write.put(BEFORE + key, NOTHING if replaced is None else SOMETHING + bytes(replaced))
        self._in_flight[(partition, key)] = in_flight + 1
        if value is None:
            write.delete(key)
        else:
            write.put(key, value)
        db.write(write)

    def on_changelog_acked(self, tp: TP, offset: int, key: bytes, written: Fence) -> None:
        """The changelog record of a write of `key` is on the broker, at `offset`;
        `written`: its generation and when it was written."""
        partition = tp.partition
        left = self._in_flight.pop((partition, key), 1) - 1
        write = WriteBatch(raw_mode=True)
        if left:
            self._in_flight[(partition, key)] = left
        else:
            write.delete(BEFORE + key)
        if self._follows(partition, offset):
            self._fences[partition] = self._fence(partition).after(written.generation, written.written_ms)
            write.put(self.offset_key, self._offset_value(partition, offset))
        self._db_for_partition(partition).write(write)

    def _follows(self, partition: int, offset: int) -> bool:
        """Whether `offset` comes right after what the database holds of its
        changelog, and so may be persisted as held.

        Acknowledged records of a partition's owner follow one another, unless
        another worker wrote in between: a worker frozen past its session wakes,
        and acknowledgements of what it buffered arrive after the new owner's
        records, which its database never got. Faust would persist such an offset
        and a later start would read on from there (chaos seed 916: 200 leads
        lost). So the persisted offset stays where the run broke, and a replay
        from there brings what the database missed."""
        if offset != self._held_through(partition) + 1:
            self._through[partition] = -2  # broken: nothing follows until a replay
            return False
        self._through[partition] = offset
        return True

    def _held_through(self, partition: int) -> int:
        """The changelog offset through which the database holds every record: -1
        for none, -2 once a run of acknowledgements broke (see `_follows`)."""
        through = self._through.get(partition)
        if through is None:
            persisted = self._read_offset_key(partition)[0]
            through = self._through[partition] = -1 if persisted is None else persisted
        return through

    def _visible_keys(self, db: Rdict) -> Iterator[bytes]:
        return (key for key in super()._visible_keys(db) if not key.startswith(OURS))

    def _visible_items(self, db: Rdict) -> Iterator[tuple[bytes, bytes]]:
        return ((key, value) for key, value in super()._visible_items(db) if not key.startswith(OURS))

    async def stop(self) -> None:
        self.logger.info("Closing rocksdb on stop")
        self._dbs.clear()
        self._fences.clear()
        self._through.clear()

    def revoke_partitions(self, table: CollectionT, tps: Set[TP]) -> None:
        for tp in tps:
            if tp.topic in table.changelog_topic.topics and self._dbs.pop(tp.partition, None) is not None:
                self._fences.pop(tp.partition, None)
                self._through.pop(tp.partition, None)
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

    def _offset_value(self, partition: int, offset: int) -> bytes:
        return f"{offset} {self._fence(partition).encode()}".encode()

    def _write_offset_key(self, partition: int, offset: int) -> None:
        self._db_for_partition(partition).put(self.offset_key, self._offset_value(partition, offset))

    def persisted_offset(self, tp: TP) -> int | None:
        return self._read_offset_key(tp.partition)[0]

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        # Faust's own call: only for a table not written through FencedTable.
        if self._follows(tp.partition, offset):
            self._write_offset_key(tp.partition, offset)

    def apply_changelog_batch(
        self, batch: Iterable[EventT[Any]], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        """Faust's, but a record the partition's fence refuses is read, not applied,
        and records apply in offset order (see `_Consumer._read_back`)."""
        events = sorted(batch, key=_position)
        read_through: dict[int, int] = {}
        for event in events:
            message = event.message
            partition = message.partition
            if partition not in read_through:
                held = self._held_through(partition)
                if held >= 0 and message.offset > held + 1:
                    # Compaction removes records, but near a partition's end this
                    # means records were lost on the way: say so, for the chaos suite.
                    self.logger.info(
                        "changelog batch for partition %s starts at %s; the database held through %s",
                        partition,
                        message.offset,
                        held,
                    )
            read_through[partition] = max(message.offset, read_through.get(partition, -1))
            self._fence(partition)
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
            self._through[partition] = offset

    def _open_for_partition(self, partition: int) -> Rdict:
        try:
            return cast(Rdict, super()._open_for_partition(partition))
        except Exception as error:  # rocksdict raises a bare Exception
            if "lock" not in repr(error):
                raise
            # Still held by an earlier database of this partition caught in a cycle.
            gc.collect()
            return cast(Rdict, super()._open_for_partition(partition))


def _position(event: EventT[Any]) -> tuple[int, int]:
    return event.message.partition, event.message.offset


def restore_writes_in_flight(tabledir: Path) -> int:
    """Put back, in every partition database in `tabledir`, the values that writes
    still in flight replaced; return how many. After a clean stop there are none."""
    restored = 0
    for path in sorted(tabledir.glob("*.db")) if tabledir.is_dir() else []:
        db = Rdict(str(path))
        try:
            undo = WriteBatch(raw_mode=True)
            markers = 0
            for found in db.keys(from_key=BEFORE):
                marker = cast(bytes, found)
                if not marker.startswith(BEFORE):
                    break
                key, replaced = marker[len(BEFORE) :], cast(bytes, db[marker])
                if replaced[:1] == SOMETHING:
                    undo.put(key, replaced[1:])
                else:
                    undo.delete(key)
                undo.delete(marker)
                markers += 1
            if markers:
                db.write(undo)
                restored += markers
        finally:
            db.close()
    return restored
