"""Assignment: which rep takes a new deal.

The rules
    Reps come from a config file (`Roster`): id, name, the countries they cover
    and their capacity (open deals at most). A new deal goes to the reps who
    cover its company's country by name; if none does (or the country is
    unknown), to the reps who cover "*". Among those with room, it goes round
    robin: to the one whose last assignment is the oldest (ties in roster order).
    When none has room, or no rep covers the country, the deal waits in the
    unassigned queue; a queued deal goes, first come first served, to the first
    eligible rep who has room again (a deal closing frees room, and the queue is
    looked at again on every new deal, so a bigger capacity in the roster takes
    effect too). A deal gets one owner and keeps it.

Desks, one per pool of reps
    Deals are partitioned by lead id across workers, but a rep's load is global:
    two workers deciding on their own would both see room for the last slot. So
    each rep's deals are decided by one agent, a "desk", one request at a time.
    Reps who share a territory compete for the same deals, so the roster splits
    into pools, the connected components of reps linked by a shared territory
    ("*" is a territory too: the catch-all reps form one pool, with whoever they
    share a country with). Every country, and so every deal, belongs to one
    pool: a country some rep names to that rep's pool, any other country (or
    none) to the pool of "*" (a desk with no reps when no rep covers "*": its
    deals wait). A pool's desk key is made of its territories, sorted:
    `desk:AT,CH,DE`, `desk:*` (`Roster.desk_key(country)`).

    The worker that opens a deal sends a `PlaceDeal` to the internal topic
    `<app id>-assignment-requests` under the desk key of its country; closing a
    deal sends a `ReleaseDeal` under the same key. Each key lands on one
    partition, so one agent handles each desk's requests in order while other
    desks run in parallel, on other partitions (two desks may hash to one) and
    workers. A request names its desk; the agent refuses one keyed otherwise.

    A desk's state is three tables, all written by the desk agent while it
    handles a request of that desk, so all to the partition of the desk key
    (Faust writes a table's changelog to the partition of the record being
    processed, whatever the table's key), and every key starts with the desk
    key, so no key is ever written from two partitions:
    - `desk`, under the desk key: one `Desk`, bounded by the pool's reps and
      countries: each rep's load, the round-robin turn, the head and tail of each
      country's queue, how many deals wait, won and lost counts;
    - `placements`, `<desk key>/<lead id>`: one `Placement` per lead, who got
      it, or queued, and whether it is closed;
    - `queue`, `<desk key>/<country or *>/<index:012d>`: one `QueueEntry` per
      waiting deal, the lead and a desk-wide sequence number (FIFO across
      countries). A lane (the queue of one country, or of "*" for every country
      no rep names) holds its entries at indexes head..tail-1.
    A request reads the desk value, the lead's placement and, only when a rep
    of the pool has room, the head of each lane that rep can take: its cost and
    its records' sizes do not grow with the number of waiting deals. A deal
    closed while queued leaves its entry behind (finding it would mean a walk);
    the drain skips and deletes it when it reaches the head, at most
    `MAX_SKIPS` per request, asking the desk to go on (`DrainDesk`) if more are
    left.

    The desk sends each `Decision` to the deal as a command on sales' command
    topic, keyed by lead id, so it reaches the partition, and the worker, that
    holds the deal and is applied in order with the deal's other writes (a close
    never interleaves with an assignment).

    Decisions go out before the state that made them is stored, but the two are
    records on different partitions: a worker that dies between them may have
    stored the state and lost the decisions. The request then comes again (its
    offset was not committed) and finds its work done. So what a request decided
    for other deals is stored with it, and a request that comes again sends it
    again: a place's and a release's on the lead's placement, a drain's on the
    desk under the drain's id. Deals take a decision again without change.

When a roster change regroups pools
    Desk keys are made of territories, so they stay as long as each pool keeps
    its countries: a change of capacity or name, a rep joining or leaving a pool
    without changing its countries, keeps every key (and the load counted). A
    country added to or dropped from a pool, moved to another, or pools joined or
    split make new keys, and a new key is a new desk: it starts with no load, so
    its reps may take a full capacity on top of the deals the old desk gave them
    (until those close: their releases go to the new desk, which does not know
    them, counts the outcome and frees no slot), and the deals queued at the old
    desk stay there, no longer served nor counted by GET /reps. Requests still
    in flight under an old key reach the old desk, which has no reps any more:
    their deals wait there too. So regroup when the affected queues are empty.
    Upgrading from the single desk of earlier versions (key `desk`) is such a
    regroup.

Under redelivery
    Every request is idempotent at the desk, by the lead's placement: asked to
    place a lead it has placed, the desk sends the same decision again and
    changes nothing; asked to release a closed placement, it does nothing. The
    deal takes only its first owner and none once closed (`deals.assign`). The
    worker opening a deal stores it first and then asks; a redelivered
    `lead.qualified` finds the deal still pending and asks again, which is
    harmless. The desk sends its decisions before it stores its state, and its
    functions are deterministic, so a desk that dies in between decides the
    same again when the request is redelivered; the queue entries it took are
    deleted last, so such a desk finds them again.

These functions are pure: they look up what they need through the lookups they
are given and return what to store and delete (`Change`).
"""

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, Protocol, TypeVar

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.events import Outcome

# Covers every country no rep covers by name; also the lane of those countries.
ANYWHERE = "*"
# How the API names the queue (GET /deals?owner=unassigned); no rep may have this id.
UNASSIGNED = "unassigned"
DESK_PREFIX = "desk:"
# Closed entries one request skips at most at the heads of the queue; then it asks again.
MAX_SKIPS = 64
# The drains whose decisions a desk keeps, to send them again if a drain comes again.
KEPT_DRAINS = 16


class Rep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rep_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    territories: list[str] = Field(min_length=1, description="ISO 3166-1 alpha-2 countries, or '*'")
    capacity: int = Field(ge=0, description="Open deals the rep holds at most")

    @field_validator("territories")
    @classmethod
    def _countries(cls, territories: list[str]) -> list[str]:
        for territory in territories:
            if territory != ANYWHERE and not (
                len(territory) == 2 and territory.isascii() and territory.isalpha() and territory.isupper()
            ):
                raise ValueError(f"territory {territory!r} is not an ISO 3166-1 alpha-2 code or '*'")
        return territories


@dataclass(frozen=True)
class Pool:
    """Reps linked by shared territories, and the one desk that decides for them."""

    key: str
    territories: tuple[str, ...]
    reps: tuple[Rep, ...]


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    reps: list[Rep]

    @model_validator(mode="after")
    def _unique(self) -> "Roster":
        ids = [rep.rep_id for rep in self.reps]
        if len(set(ids)) != len(ids):
            raise ValueError("a rep_id is listed twice")
        if UNASSIGNED in ids:
            raise ValueError(f"{UNASSIGNED!r} names the queue; no rep may have that id")
        return self

    def rep(self, rep_id: str) -> Rep | None:
        return next((rep for rep in self.reps if rep.rep_id == rep_id), None)

    def eligible(self, country: str | None) -> list[Rep]:
        """The reps who may take a deal from `country`, in roster order."""
        named = [rep for rep in self.reps if country is not None and country in rep.territories]
        return named or [rep for rep in self.reps if ANYWHERE in rep.territories]

    def lane(self, country: str | None) -> str:
        """The queue a deal from `country` waits in: its country if a rep names it,
        else "*" (every such country has the same reps)."""
        return country if country is not None and country in self._named else ANYWHERE

    def desk_key(self, country: str | None) -> str:
        """The key of the desk that decides for deals from `country`."""
        return self._desk_of[self.lane(country)]

    @property
    def pools(self) -> tuple[Pool, ...]:
        """Every desk, in roster order of its first rep (a rep-less "*" desk last)."""
        return tuple(self._pools.values())

    def pool(self, key: str) -> Pool | None:
        return self._pools.get(key)

    def eligible_at(self, key: str, lane: str) -> list[Rep]:
        """The reps of desk `key` who may take a deal of `lane`: its eligible reps, all
        of this desk's unless the roster regrouped since the request was sent."""
        pool = self._pools.get(key)
        return [] if pool is None else [rep for rep in self.eligible(lane) if rep in pool.reps]

    @cached_property
    def _named(self) -> frozenset[str]:
        return frozenset(t for rep in self.reps for t in rep.territories if t != ANYWHERE)

    @cached_property
    def _pools(self) -> dict[str, Pool]:
        # Union-find over reps: two reps covering a territory (or both "*") are one pool.
        parent = list(range(len(self.reps)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        first: dict[str, int] = {}
        for i, rep in enumerate(self.reps):
            for territory in rep.territories:
                parent[root(i)] = root(first.setdefault(territory, i))
        groups: dict[int, list[Rep]] = {}
        for i, rep in enumerate(self.reps):
            groups.setdefault(root(i), []).append(rep)
        pools = [_pool(reps) for reps in groups.values()]
        if ANYWHERE not in first:
            pools.append(_pool([]))  # countries nobody covers still need a desk to wait at
        return {pool.key: pool for pool in pools}

    @cached_property
    def _desk_of(self) -> dict[str, str]:
        return {territory: pool.key for pool in self._pools.values() for territory in pool.territories}

    @classmethod
    def load(cls, path: Path) -> "Roster":
        return cls.model_validate(yaml.safe_load(path.read_text()))


def _pool(reps: list[Rep]) -> Pool:
    territories = tuple(sorted({t for rep in reps for t in rep.territories} or {ANYWHERE}))
    return Pool(key=DESK_PREFIX + ",".join(territories), territories=territories, reps=tuple(reps))


def placement_key(desk: str, lead_id: str) -> str:
    return f"{desk}/{lead_id}"


def queue_key(desk: str, lane: str, index: int) -> str:
    return f"{desk}/{lane}/{index:012d}"


class Decision(BaseModel):
    """Sent back to the deal: its owner, or None while it waits in the queue."""

    lead_id: str = Field(min_length=1)
    owner: str | None
    decided_at: AwareDatetime


class RepLoad(BaseModel):
    open: int = 0
    # The desk's turn at the rep's last assignment; 0: never assigned.
    last_turn: int = 0
    won: int = 0
    lost: int = 0


class Lane(BaseModel):
    """One lane of the queue: its entries are at indexes head..tail-1."""

    head: int = 0
    tail: int = 0


class Desk(BaseModel):
    """A desk's state but its placements and queue entries: bounded by the pool's
    reps and countries, whatever the number of deals."""

    turn: int = 0
    reps: dict[str, RepLoad] = Field(default_factory=dict)
    lanes: dict[str, Lane] = Field(default_factory=dict, description="By country, or '*'")
    queued: int = Field(default=0, description="Deals ever queued: the last one's sequence number")
    waiting: int = Field(default=0, description="Deals in the queue now")
    won: int = 0
    lost: int = 0
    # The last drains' decisions, by drain id: sent again if the drain comes again.
    drains: dict[str, list[Decision]] = Field(default_factory=dict)

    def load(self, rep_id: str) -> RepLoad:
        return self.reps.get(rep_id) or RepLoad()

    @property
    def win_rate(self) -> float | None:
        closed = self.won + self.lost
        return self.won / closed if closed else None


class Placement(BaseModel):
    """What the desk decided for one lead."""

    lead_id: str
    country: str | None
    owner: str | None = None
    requested_at: AwareDatetime
    placed_at: AwareDatetime | None = None
    outcome: Outcome | None = Field(default=None, description="Set once the deal is closed")
    # What the request that placed this deal, and the one that released it, decided
    # for other deals (queued ones given a rep): sent again if that request comes again.
    decided_on_place: list[Decision] = Field(default_factory=list)
    decided_on_release: list[Decision] = Field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.outcome is not None


class QueueEntry(BaseModel):
    """A waiting deal. `seq` orders the desk's lanes against each other."""

    lead_id: str
    seq: int


class PlaceDeal(BaseModel):
    kind: Literal["place"] = "place"
    desk: str = Field(min_length=1, description="The desk key the request is sent under")
    lead_id: str = Field(min_length=1)
    country: str | None
    requested_at: AwareDatetime


class ReleaseDeal(BaseModel):
    kind: Literal["release"] = "release"
    desk: str = Field(min_length=1, description="The desk key the request is sent under")
    lead_id: str = Field(min_length=1)
    outcome: Outcome
    at: AwareDatetime


class DrainDesk(BaseModel):
    """The desk's note to itself: hand out what waits, the last request stopped at MAX_SKIPS."""

    kind: Literal["drain"] = "drain"
    desk: str = Field(min_length=1, description="The desk key the request is sent under")
    # Which request asked, and the how-manyth drain it is: a drain that comes again
    # is known by it. None: sent before drains had ids, handled as new.
    after: str | None = None
    n: int = 0

    @property
    def drain_id(self) -> str | None:
        return None if self.after is None else f"{self.after}#{self.n}"


def go_on(request: "PlaceDeal | ReleaseDeal | DrainDesk") -> DrainDesk:
    """The DrainDesk a request that stopped at MAX_SKIPS sends its desk."""
    match request:
        case PlaceDeal():
            return DrainDesk(desk=request.desk, after=f"place/{request.lead_id}", n=1)
        case ReleaseDeal():
            return DrainDesk(desk=request.desk, after=f"release/{request.lead_id}", n=1)
        case DrainDesk():
            return DrainDesk(desk=request.desk, after=request.after, n=request.n + 1)


DeskRequest = Annotated[PlaceDeal | ReleaseDeal | DrainDesk, Field(discriminator="kind")]


@dataclass(frozen=True)
class Change:
    """What a request decided: the new desk, what to store (by table key) and delete."""

    desk: Desk
    placements: dict[str, Placement] = field(default_factory=dict)
    queue: dict[str, QueueEntry] = field(default_factory=dict)
    dequeued: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    # Stopped at MAX_SKIPS: the handler sends the desk a DrainDesk to go on.
    more: bool = False


T_co = TypeVar("T_co", covariant=True)


class Lookup(Protocol[T_co]):
    """A table read one key at a time (the queue and the placements can be long)."""

    def get(self, key: str, /) -> T_co | None: ...


def place(
    desk: Desk,
    roster: Roster,
    request: PlaceDeal,
    *,
    placements: Lookup[Placement],
    queue: Lookup[QueueEntry],
    now: datetime,
) -> Change:
    """Place a new deal with a rep of its desk or in the queue."""
    key = placement_key(request.desk, request.lead_id)
    known = placements.get(key)
    if known is not None:
        # Asked again: answer what was decided (nothing for a closed deal), and send
        # again what placing it decided for others.
        again = list(known.decided_on_place)
        if not known.closed:
            again.insert(0, Decision(lead_id=known.lead_id, owner=known.owner, decided_at=now))
        return Change(desk, decisions=again)
    work = _Work(desk.model_copy(deep=True), roster, request.desk, placements, queue, now)
    # Those who waited go first, should a rep have room (a bigger capacity).
    work.drain()
    placement = Placement(
        lead_id=request.lead_id,
        country=request.country,
        requested_at=request.requested_at,
        decided_on_place=list(work.decisions),
    )
    lane = roster.lane(request.country)
    # Behind closed entries the drain had no time to skip, older deals may wait for the same reps.
    rep = None if work.more else work.pick(lane)
    if rep is None:
        work.enqueue(lane, request.lead_id)
    else:
        placement = work.give(rep, placement)
    work.placements[key] = placement
    work.decisions.append(Decision(lead_id=request.lead_id, owner=placement.owner, decided_at=now))
    return work.change()


def release(
    desk: Desk,
    roster: Roster,
    request: ReleaseDeal,
    *,
    placements: Lookup[Placement],
    queue: Lookup[QueueEntry],
    now: datetime,
) -> Change:
    """A deal closed: free its rep's slot (or its place in the queue), count the
    outcome and hand free slots to the queue."""
    key = placement_key(request.desk, request.lead_id)
    known = placements.get(key)
    if known is not None and known.closed:
        # Released already: send again what the release decided for others.
        return Change(desk, decisions=list(known.decided_on_release))
    work = _Work(desk.model_copy(deep=True), roster, request.desk, placements, queue, now)
    book = work.book
    if known is None:
        # Opened before this desk knew it (see the regrouping above); recorded so a
        # second release counts nothing.
        known = Placement(lead_id=request.lead_id, country=None, requested_at=request.at)
    elif known.owner is not None:
        load = book.reps.setdefault(known.owner, RepLoad())
        load.open = max(0, load.open - 1)
        if request.outcome is Outcome.WON:
            load.won += 1
        else:
            load.lost += 1
    else:
        # Queued: its entry stays behind, to be skipped when it reaches the head.
        book.waiting = max(0, book.waiting - 1)
    if request.outcome is Outcome.WON:
        book.won += 1
    else:
        book.lost += 1
    released = known.model_copy(update={"outcome": request.outcome})
    work.placements[key] = released  # closed: the drain skips it
    work.drain()
    work.placements[key] = released.model_copy(update={"decided_on_release": list(work.decisions)})
    return work.change()


def drain(
    desk: Desk,
    roster: Roster,
    request: DrainDesk,
    *,
    placements: Lookup[Placement],
    queue: Lookup[QueueEntry],
    now: datetime,
) -> Change:
    """Hand queued deals to reps with room: what a request stopped at MAX_SKIPS left."""
    drain_id = request.drain_id
    if drain_id is not None and drain_id in desk.drains:
        return Change(desk, decisions=list(desk.drains[drain_id]))  # this drain came again
    work = _Work(desk.model_copy(deep=True), roster, request.desk, placements, queue, now)
    work.drain()
    if drain_id is not None:
        kept = work.book.drains
        kept[drain_id] = list(work.decisions)
        for old in list(kept)[:-KEPT_DRAINS]:
            del kept[old]
    return work.change()


@dataclass
class _Head:
    index: int
    entry: QueueEntry
    placement: Placement


@dataclass
class _Work:
    """One request's decisions on a copy of the desk, and what they store."""

    book: Desk
    roster: Roster
    key: str
    lookup_placements: Lookup[Placement]
    lookup_queue: Lookup[QueueEntry]
    now: datetime
    placements: dict[str, Placement] = field(default_factory=dict)
    queue: dict[str, QueueEntry] = field(default_factory=dict)
    dequeued: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    skipped: int = 0
    more: bool = False

    def change(self) -> Change:
        return Change(self.book, self.placements, self.queue, self.dequeued, self.decisions, self.more)

    def pick(self, lane: str) -> Rep | None:
        book = self.book
        with_room = [
            rep
            for rep in self.roster.eligible_at(self.key, lane)
            if book.load(rep.rep_id).open < rep.capacity
        ]
        # min() keeps the first of equals: roster order breaks ties.
        return min(with_room, key=lambda rep: book.load(rep.rep_id).last_turn, default=None)

    def give(self, rep: Rep, placement: Placement) -> Placement:
        self.book.turn += 1
        load = self.book.reps.setdefault(rep.rep_id, RepLoad())
        load.open += 1
        load.last_turn = self.book.turn
        return placement.model_copy(update={"owner": rep.rep_id, "placed_at": self.now})

    def enqueue(self, lane: str, lead_id: str) -> None:
        ends = self.book.lanes.setdefault(lane, Lane())
        self.book.queued += 1
        self.book.waiting += 1
        self.queue[queue_key(self.key, lane, ends.tail)] = QueueEntry(lead_id=lead_id, seq=self.book.queued)
        ends.tail += 1

    def drain(self) -> None:
        """Give queued deals, oldest first across lanes, to eligible reps with room."""
        heads: dict[str, _Head] = {}
        while True:
            # Only lanes someone with room can take; the usual case under load is none.
            lanes = [
                lane
                for lane, ends in self.book.lanes.items()
                if ends.head < ends.tail and self.pick(lane) is not None
            ]
            for lane in lanes:
                if lane not in heads and not self._find_head(lane, heads):
                    return
            ready = [lane for lane in lanes if lane in heads]
            if not ready:
                return
            lane = min(ready, key=lambda name: heads[name].entry.seq)
            head = heads.pop(lane)
            rep = self.pick(lane)
            assert rep is not None  # the lane was chosen for a rep with room
            self._take(lane, head.index)
            self.book.waiting = max(0, self.book.waiting - 1)
            placement = self.give(rep, head.placement)
            self.placements[placement_key(self.key, placement.lead_id)] = placement
            self.decisions.append(
                Decision(lead_id=placement.lead_id, owner=placement.owner, decided_at=self.now)
            )

    def _find_head(self, lane: str, heads: dict[str, _Head]) -> bool:
        """Look up the lane's oldest live entry into `heads`, skipping those closed
        meanwhile; False once this request has skipped MAX_SKIPS."""
        ends = self.book.lanes[lane]
        while ends.head < ends.tail:
            key = queue_key(self.key, lane, ends.head)
            entry = self.lookup_queue.get(key)
            placement = None if entry is None else self._placement(entry.lead_id)
            if entry is not None and placement is not None and not placement.closed:
                heads[lane] = _Head(ends.head, entry, placement)
                return True
            if self.skipped == MAX_SKIPS:
                self.more = True
                return False
            self.skipped += 1
            self._take(lane, ends.head)
        return True

    def _placement(self, lead_id: str) -> Placement | None:
        key = placement_key(self.key, lead_id)
        return self.placements.get(key) or self.lookup_placements.get(key)

    def _take(self, lane: str, index: int) -> None:
        self.dequeued.append(queue_key(self.key, lane, index))
        self.book.lanes[lane].head = index + 1
