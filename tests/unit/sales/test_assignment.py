"""Assignment: territory first, then round robin among reps with room, else the queue;
one desk per pool of reps, and a queue whose length no request pays for."""

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from schemas.events import Outcome
from services.sales.domain.assignment import (
    KEPT_DRAINS,
    MAX_SKIPS,
    Change,
    Decision,
    Desk,
    DrainDesk,
    Lane,
    PlaceDeal,
    Placement,
    QueueEntry,
    ReleaseDeal,
    Rep,
    Roster,
    drain,
    go_on,
    place,
    placement_key,
    queue_key,
    release,
)
from services.sales.settings import DEFAULT_REPS_FILE
from tests.unit.sales.samples import at

ROSTER = Roster(
    version="t",
    reps=[
        Rep(rep_id="de-1", name="A", territories=["DE", "AT"], capacity=2),
        Rep(rep_id="de-2", name="B", territories=["DE"], capacity=2),
        Rep(rep_id="fr", name="C", territories=["FR"], capacity=1),
        Rep(rep_id="world", name="D", territories=["*"], capacity=1),
    ],
)
DACH = "desk:AT,DE"

M = TypeVar("M", bound=BaseModel)


class Table(Generic[M]):
    """A table as the desk's handler gives it: read one key at a time, reads counted.
    `backlog` makes up the values of keys never written nor deleted (see Book.backlog)."""

    def __init__(self) -> None:
        self.data: dict[str, M] = {}
        self.deleted: set[str] = set()
        self.backlog: Callable[[str], M | None] = lambda key: None
        self.reads = 0

    def get(self, key: str, /) -> M | None:
        self.reads += 1
        if key in self.data:
            return self.data[key]
        return None if key in self.deleted else self.backlog(key)


class Book:
    """Every desk's state as the handler keeps it: the desks, placements and queue,
    each request sent to the desk of its lead's country, as the handler does."""

    def __init__(self, roster: Roster = ROSTER) -> None:
        self.roster = roster
        self.desks: dict[str, Desk] = {}
        self.placements: Table[Placement] = Table()
        self.queue: Table[QueueEntry] = Table()
        self.countries: dict[str, str | None] = {}
        self.minute = 0
        self.last: Change | None = None
        # Each request's table reads and writes (stores and deletes).
        self.reads = 0
        self.writes = 0

    def _apply(
        self, key: str, change: Change, request: PlaceDeal | ReleaseDeal | DrainDesk
    ) -> list[Decision]:
        self.last = change
        self.desks[key] = change.desk
        self.placements.data |= change.placements
        self.queue.data |= change.queue
        for entry_key in change.dequeued:
            self.queue.data.pop(entry_key, None)
            self.queue.deleted.add(entry_key)
        self.writes = len(change.placements) + len(change.queue) + len(change.dequeued) + 1
        decisions = change.decisions
        if change.more:  # the handler sends the desk a DrainDesk; handled here at once
            decisions = [*decisions, *self.drain(go_on(request))]
        return decisions

    def _reset(self) -> None:
        self.placements.reads = self.queue.reads = 0

    def _read(self) -> None:
        self.reads = self.placements.reads + self.queue.reads

    def place(self, lead_id: str, country: str | None, *, desk: str | None = None) -> list[Decision]:
        self.minute += 1
        key = desk or self.roster.desk_key(country)
        self.countries[lead_id] = country
        request = PlaceDeal(desk=key, lead_id=lead_id, country=country, requested_at=at(self.minute))
        self._reset()
        change = place(
            self.desk(key),
            self.roster,
            request,
            placements=self.placements,
            queue=self.queue,
            now=at(self.minute),
        )
        self._read()
        return self._apply(key, change, request)

    def release(self, lead_id: str, outcome: Outcome = Outcome.WON) -> list[Decision]:
        self.minute += 1
        key = self.roster.desk_key(self.countries.get(lead_id))
        request = ReleaseDeal(desk=key, lead_id=lead_id, outcome=outcome, at=at(self.minute))
        self._reset()
        change = release(
            self.desk(key),
            self.roster,
            request,
            placements=self.placements,
            queue=self.queue,
            now=at(self.minute),
        )
        self._read()
        return self._apply(key, change, request)

    def drain(self, request: DrainDesk) -> list[Decision]:
        key = request.desk
        change = drain(
            self.desk(key),
            self.roster,
            request,
            placements=self.placements,
            queue=self.queue,
            now=at(self.minute),
        )
        return self._apply(key, change, request)

    def desk(self, key: str = DACH) -> Desk:
        return self.desks.get(key) or Desk()

    def placement(self, lead_id: str) -> Placement:
        key = self.roster.desk_key(self.countries.get(lead_id))
        placement = self.placements.get(placement_key(key, lead_id))
        assert placement is not None
        return placement

    def owner(self, lead_id: str) -> str | None:
        return self.placement(lead_id).owner

    def waiting(self, key: str = DACH) -> list[str]:
        """The desk's queued deals not closed, oldest first (by walking every entry)."""
        entries = [e for k, e in self.queue.data.items() if k.startswith(f"{key}/")]
        live = [e for e in entries if not self.placements.data[placement_key(key, e.lead_id)].closed]
        return [e.lead_id for e in sorted(live, key=lambda e: e.seq)]

    def backlog(self, country: str, count: int) -> None:
        """`count` deals queued for `country`, as `place` would have queued them (a
        test checks), but made up when read: 10,000 requests would take a second."""
        key, lane = self.roster.desk_key(country), self.roster.lane(country)
        book = self.desk(key).model_copy(deep=True)
        ends = book.lanes.setdefault(lane, Lane())
        index, seq = ends.tail, book.queued + 1
        entries, leads = f"{key}/{lane}/", f"{key}/backlog-"

        def entry(entry_key: str) -> QueueEntry | None:
            n = int(entry_key.removeprefix(entries)) - index if entry_key.startswith(entries) else -1
            return QueueEntry(lead_id=f"backlog-{seq + n}", seq=seq + n) if 0 <= n < count else None

        def placement(lead_key: str) -> Placement | None:
            n = int(lead_key.removeprefix(leads)) - seq if lead_key.startswith(leads) else -1
            lead_id = f"backlog-{seq + n}"
            return Placement(lead_id=lead_id, country=country, requested_at=at(0)) if 0 <= n < count else None

        self.queue.backlog, self.placements.backlog = entry, placement
        self.countries |= {f"backlog-{seq + n}": country for n in range(count)}
        book.queued += count
        book.waiting += count
        ends.tail += count
        self.desks[key] = book


def owners(decisions: Iterable[Decision]) -> list[tuple[str, str | None]]:
    return [(d.lead_id, d.owner) for d in decisions]


# -- the rules ---------------------------------------------------------------------------


def test_deals_go_by_territory_then_round_robin() -> None:
    book = Book()
    assert owners(book.place("l1", "DE")) == [("l1", "de-1")]
    assert owners(book.place("l2", "DE")) == [("l2", "de-2")]
    assert owners(book.place("l3", "DE")) == [("l3", "de-1")]
    assert owners(book.place("l4", "FR")) == [("l4", "fr")]
    # Only de-1 covers AT, and it is full: the queue, not de-2.
    assert owners(book.place("l5", "AT")) == [("l5", None)]


def test_round_robin_skips_the_rep_whose_turn_it_was_most_recently() -> None:
    book = Book()
    book.place("l1", "AT")  # only de-1 covers AT
    # de-2 has waited longest (never assigned), so it is next for DE.
    assert owners(book.place("l2", "DE")) == [("l2", "de-2")]
    assert owners(book.place("l3", "DE")) == [("l3", "de-1")]


def test_a_country_no_rep_covers_by_name_goes_to_the_catch_all_reps() -> None:
    book = Book()
    assert owners(book.place("l1", "JP")) == [("l1", "world")]
    # No country: the catch-all reps too; world is full, so the queue.
    assert owners(book.place("l2", None)) == [("l2", None)]
    assert book.waiting("desk:*") == ["l2"]


def test_full_reps_send_deals_to_the_queue_never_to_another_territory() -> None:
    book = Book()
    book.place("f1", "FR")
    assert owners(book.place("f2", "FR")) == [("f2", None)]
    assert book.waiting("desk:FR") == ["f2"]
    assert book.desk("desk:FR").load("fr").open == 1
    assert book.desk("desk:*").load("world").open == 0


def test_without_any_eligible_rep_a_deal_waits_in_the_queue() -> None:
    roster = Roster(version="t", reps=[Rep(rep_id="de", name="A", territories=["DE"], capacity=5)])
    book = Book(roster)
    assert owners(book.place("l1", "JP")) == [("l1", None)]
    assert book.waiting("desk:*") == ["l1"]


def test_capacity_is_never_exceeded_and_load_is_counted() -> None:
    book = Book()
    for n in range(6):
        book.place(f"l{n}", "DE")
    assert book.desk().load("de-1").open == 2
    assert book.desk().load("de-2").open == 2
    assert book.waiting() == ["l4", "l5"]
    assert book.desk().waiting == 2


def test_closing_a_deal_frees_the_slot_for_the_oldest_queued_deal() -> None:
    book = Book()
    for n in range(6):
        book.place(f"l{n}", "DE")
    freed = book.owner("l1")
    decisions = book.release("l1", Outcome.LOST)
    assert owners(decisions) == [("l4", freed)]
    assert book.waiting() == ["l5"]
    assert book.desk().load(str(freed)).open == 2
    assert book.desk().load(str(freed)).lost == 1
    assert (book.desk().won, book.desk().lost) == (0, 1)


def test_a_queued_deal_that_closes_leaves_the_queue() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")
    assert book.release("f2", Outcome.LOST) == []
    assert book.waiting("desk:FR") == []
    assert book.desk("desk:FR").waiting == 0
    assert book.desk("desk:FR").load("fr").open == 1


def test_a_deal_closed_while_queued_is_skipped_and_its_entry_deleted() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")
    book.place("f3", "FR")
    book.release("f2", Outcome.LOST)  # closed while queued: its entry stays for now
    assert queue_key("desk:FR", "FR", 0) in book.queue.data
    assert owners(book.release("f1")) == [("f3", "fr")]
    assert book.owner("f2") is None
    assert book.placement("f2").outcome is Outcome.LOST
    assert book.queue.data == {}
    assert book.desk("desk:FR").lanes["FR"] == Lane(head=2, tail=2)
    assert book.desk("desk:FR").waiting == 0


def test_a_queued_deal_for_another_territory_does_not_take_the_freed_slot() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")  # queued for fr
    book.place("d1", "DE")
    assert book.release("d1") == []
    assert book.waiting("desk:FR") == ["f2"]


def test_the_queue_is_first_come_first_served_across_the_countries_of_a_desk() -> None:
    roster = Roster(
        version="t",
        reps=[
            Rep(rep_id="dach", name="A", territories=["DE", "AT"], capacity=1),
            Rep(rep_id="at", name="B", territories=["AT"], capacity=1),
        ],
    )
    book = Book(roster)
    book.place("d1", "DE")  # dach
    book.place("a1", "AT")  # at
    book.place("a2", "AT")  # queued first
    book.place("d2", "DE")
    book.place("a3", "AT")
    assert book.waiting() == ["a2", "d2", "a3"]
    # dach takes either country: the oldest across both lanes.
    assert owners(book.release("d1")) == [("a2", "dach")]
    assert owners(book.release("a2")) == [("d2", "dach")]
    # at takes AT only: d2's lane is not for it, a3 is.
    assert owners(book.release("a1")) == [("a3", "at")]


def test_a_bigger_capacity_in_the_roster_serves_the_queue_on_the_next_deal() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")
    book.roster = Roster(version="t2", reps=[Rep(rep_id="fr", name="C", territories=["FR"], capacity=3)])
    assert owners(book.place("f3", "FR")) == [("f2", "fr"), ("f3", "fr")]


# -- pools and desk keys -------------------------------------------------------------------


def desks(roster: Roster) -> dict[str, list[str]]:
    return {pool.key: [rep.rep_id for rep in pool.reps] for pool in roster.pools}


def reps(*territories: list[str]) -> Roster:
    return Roster(
        version="t",
        reps=[Rep(rep_id=f"r{n}", name="R", territories=t, capacity=1) for n, t in enumerate(territories)],
    )


def test_reps_sharing_a_territory_share_a_desk_even_through_another_rep() -> None:
    roster = reps(["DE", "AT"], ["FR"], ["AT", "CH"], ["CH"], ["*"])
    assert desks(roster) == {"desk:AT,CH,DE": ["r0", "r2", "r3"], "desk:FR": ["r1"], "desk:*": ["r4"]}
    assert [roster.desk_key(c) for c in ("DE", "AT", "CH", "FR")] == [
        "desk:AT,CH,DE",
        "desk:AT,CH,DE",
        "desk:AT,CH,DE",
        "desk:FR",
    ]


def test_catch_all_reps_share_one_desk_and_join_the_countries_they_name() -> None:
    assert desks(reps(["*"], ["DE"], ["*"])) == {"desk:*": ["r0", "r2"], "desk:DE": ["r1"]}
    # A rep covering "*" and DE links DE's reps with every "*" rep.
    assert desks(reps(["*"], ["DE"], ["DE", "*"], ["FR"])) == {
        "desk:*,DE": ["r0", "r1", "r2"],
        "desk:FR": ["r3"],
    }


def test_countries_no_rep_names_and_no_country_go_to_the_catch_all_desk() -> None:
    roster = reps(["DE"], ["*"])
    assert roster.desk_key("JP") == roster.desk_key(None) == "desk:*"
    assert (roster.lane("JP"), roster.lane(None), roster.lane("DE")) == ("*", "*", "DE")
    # With no catch-all rep, a desk of no reps: such deals wait there, visibly.
    alone = reps(["DE"])
    assert desks(alone) == {"desk:DE": ["r0"], "desk:*": []}
    assert alone.desk_key("JP") == "desk:*"


def test_two_pools_are_two_desks_and_each_keeps_its_reps_load() -> None:
    book = Book()
    assert ROSTER.desk_key("DE") != ROSTER.desk_key("FR")
    book.place("d1", "DE")
    book.place("f1", "FR")
    assert book.desks.keys() == {DACH, "desk:FR"}
    assert book.desk(DACH).reps.keys() == {"de-1"}
    assert book.desk("desk:FR").reps.keys() == {"fr"}
    assert placement_key("desk:FR", "f1") in book.placements.data
    assert placement_key(DACH, "f1") not in book.placements.data


def test_the_shipped_roster_loads_and_splits_into_its_regions() -> None:
    roster = Roster.load(DEFAULT_REPS_FILE)
    assert roster.eligible("NO")  # YAML's "Norway problem" would have made it false
    assert [rep.rep_id for rep in roster.eligible("BR")] == ["rep-international"]
    assert desks(roster) == {
        "desk:AT,CH,DE": ["rep-dach-1", "rep-dach-2"],
        "desk:GB,IE": ["rep-uki"],
        "desk:BE,FR,LU,NL": ["rep-benelux-fr"],
        "desk:DK,FI,IS,NO,SE": ["rep-nordics"],
        "desk:*": ["rep-international"],
    }


def test_a_request_for_a_desk_the_roster_no_longer_has_waits_there() -> None:
    # Sent before a roster change regrouped the pools (see the module docstring).
    book = Book()
    assert owners(book.place("l1", "DE", desk="desk:DE")) == [("l1", None)]
    assert book.waiting("desk:DE") == ["l1"]


def test_a_desk_decides_only_for_its_own_reps() -> None:
    # A DE deal sent to the FR desk: fr does not cover DE, and DE's reps are another desk's.
    book = Book()
    assert owners(book.place("l1", "DE", desk="desk:FR")) == [("l1", None)]
    assert book.desk("desk:FR").load("de-1").open == 0


# -- under redelivery ----------------------------------------------------------------------


def test_a_redelivered_request_gets_the_same_answer_and_changes_nothing() -> None:
    book = Book()
    first = book.place("l1", "DE")
    desk = book.desk()
    again = book.place("l1", "DE")
    assert owners(again) == owners(first)
    assert book.desk() == desk
    assert book.desk().load("de-1").open == 1


def test_a_redelivered_queued_request_queues_once() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")
    entries = dict(book.queue.data)
    assert owners(book.place("f2", "FR")) == [("f2", None)]
    assert book.queue.data == entries
    assert book.desk("desk:FR").waiting == 1


def test_a_redelivered_release_changes_nothing() -> None:
    book = Book()
    book.place("l1", "DE")
    book.release("l1", Outcome.WON)
    desk = book.desk()
    assert book.release("l1", Outcome.WON) == []
    assert book.desk() == desk
    assert (desk.won, desk.load("de-1").open, desk.load("de-1").won) == (1, 0, 1)
    # And a closed deal asked about again gets no decision.
    assert book.place("l1", "DE") == []


def test_a_replayed_desk_decides_the_same() -> None:
    # The desk sends decisions before storing: replayed on the same state, it decides the same.
    book = Book()
    for n in range(4):
        book.place(f"f{n}", "FR")
    for request in (
        ReleaseDeal(desk="desk:FR", lead_id="f0", outcome=Outcome.WON, at=at(9)),
        ReleaseDeal(desk="desk:FR", lead_id="f2", outcome=Outcome.LOST, at=at(9)),
    ):
        first, second = (
            release(
                book.desk("desk:FR"), ROSTER, request, placements=book.placements, queue=book.queue, now=at(9)
            )
            for _ in range(2)
        )
        assert first == second
    placed = PlaceDeal(desk=DACH, lead_id="d1", country="DE", requested_at=at(9))
    assert place(Desk(), ROSTER, placed, placements={}, queue={}, now=at(9)) == place(
        Desk(), ROSTER, placed, placements={}, queue={}, now=at(9)
    )


def test_the_win_rate_counts_every_close() -> None:
    book = Book()
    assert book.desk().win_rate is None
    for lead_id, outcome in [
        ("a", Outcome.WON),
        ("b", Outcome.LOST),
        ("c", Outcome.LOST),
        ("d", Outcome.WON),
    ]:
        book.place(lead_id, "DE")
        book.release(lead_id, outcome)
    assert book.desk().win_rate == 0.5


def test_a_release_the_desk_never_placed_counts_once() -> None:
    book = Book()
    book.release("ghost", Outcome.WON)
    book.release("ghost", Outcome.WON)
    assert book.desk("desk:*").won == 1


# -- a queue whose length no request pays for ----------------------------------------------


FR_ONLY = Roster(version="t", reps=[Rep(rep_id="fr", name="C", territories=["FR"], capacity=1)])


def test_the_backlog_helper_makes_what_placing_makes() -> None:
    placed, seeded = Book(FR_ONLY), Book(FR_ONLY)
    placed.place("first", "FR")
    seeded.place("first", "FR")
    for n in range(10):
        placed.place(f"backlog-{n + 1}", "FR")
    seeded.backlog("FR", 10)
    assert seeded.desks == placed.desks
    assert {k: seeded.queue.get(k) for k in placed.queue.data} == placed.queue.data
    for k, p in placed.placements.data.items():
        made_up = p if p.lead_id == "first" else p.model_copy(update={"requested_at": at(0)})
        assert seeded.placements.get(k) == made_up
    assert seeded.queue.get(queue_key("desk:FR", "FR", 10)) is None
    assert seeded.placements.get(placement_key("desk:FR", "backlog-11")) is None


def costs(waiting: int) -> list[tuple[str, int, int, int]]:
    """Per request of a busy desk with `waiting` deals queued: reads, writes and the
    desk value's size in bytes."""
    book = Book(FR_ONLY)
    book.place("first", "FR")
    book.backlog("FR", waiting)
    measured = []

    def measure(what: str) -> None:
        measured.append((what, book.reads, book.writes, len(book.desk("desk:FR").model_dump_json()) // 100))

    book.place("new", "FR")  # queued: everyone is full
    measure("place, queued")
    book.place("new", "FR")
    measure("place, redelivered")
    book.release("first")  # the head takes the freed slot
    measure("release, the head assigned")
    book.release("backlog-2", Outcome.LOST)  # closed while queued
    measure("release of a queued deal")
    book.release("backlog-1")  # backlog-2 is skipped, backlog-3 assigned
    measure("release, a closed deal skipped")
    return measured


def test_a_request_costs_the_same_with_10_and_with_10000_deals_queued() -> None:
    few, many = costs(10), costs(10_000)
    assert few == many
    # A handful of reads and writes each, and a desk value of a few hundred bytes.
    assert all(reads <= 5 and writes <= 5 and hundreds < 5 for _, reads, writes, hundreds in many), many


def test_10000_queued_deals_go_out_in_order_as_slots_free() -> None:
    book = Book(FR_ONLY)
    book.place("first", "FR")
    book.backlog("FR", 10_000)
    book.place("last", "FR")
    assert owners(book.release("first")) == [("backlog-1", "fr")]
    assert owners(book.release("backlog-1")) == [("backlog-2", "fr")]
    assert book.desk("desk:FR").waiting == 9_999
    assert book.desk("desk:FR").lanes["FR"] == Lane(head=2, tail=10_001)


def test_a_long_run_of_closed_deals_is_skipped_a_bounded_number_at_a_time() -> None:
    book = Book(FR_ONLY)
    book.place("first", "FR")
    book.backlog("FR", MAX_SKIPS * 2 + 1)
    book.place("later", "FR")
    for n in range(1, MAX_SKIPS * 2 + 2):
        book.release(f"backlog-{n}", Outcome.LOST)
    request = ReleaseDeal(desk="desk:FR", lead_id="first", outcome=Outcome.WON, at=at(99))
    change = release(
        book.desk("desk:FR"), FR_ONLY, request, placements=book.placements, queue=book.queue, now=at(99)
    )
    # MAX_SKIPS entries skipped, then a DrainDesk to go on; nobody assigned yet.
    assert (change.more, change.decisions, len(change.dequeued)) == (True, [], MAX_SKIPS)
    # Through the Book, which follows up with DrainDesk as the handler does, until done.
    assert owners(book.release("first")) == [("later", "fr")]
    assert book.queue.data == {}
    assert book.desk("desk:FR").lanes["FR"] == Lane(head=MAX_SKIPS * 2 + 2, tail=MAX_SKIPS * 2 + 2)


def test_a_new_deal_does_not_overtake_older_ones_behind_unskipped_closed_entries() -> None:
    book = Book(FR_ONLY)
    book.place("first", "FR")
    book.backlog("FR", MAX_SKIPS + 1)
    book.place("waited", "FR")
    for n in range(1, MAX_SKIPS + 2):
        book.release(f"backlog-{n}", Outcome.LOST)
    # Room for one more: "waited" has it, though the drain stops before reaching it.
    book.roster = Roster(version="t2", reps=[Rep(rep_id="fr", name="C", territories=["FR"], capacity=2)])
    request = PlaceDeal(desk="desk:FR", lead_id="new", country="FR", requested_at=at(99))
    change = place(
        book.desk("desk:FR"), book.roster, request, placements=book.placements, queue=book.queue, now=at(99)
    )
    assert change.more
    assert owners(change.decisions) == [("new", None)]
    # The follow-up DrainDesk gives the slot to the deal that waited.
    assert owners(book.place("new", "FR")) == [("new", None), ("waited", "fr")]
    assert book.waiting("desk:FR") == ["new"]


def test_a_roster_refuses_repeated_ids_bad_territories_and_the_queue_name() -> None:
    with pytest.raises(ValidationError, match="twice"):
        Roster(
            version="t",
            reps=[Rep(rep_id="a", name="A", territories=["DE"], capacity=1)] * 2,
        )
    with pytest.raises(ValidationError, match="alpha-2"):
        Rep(rep_id="a", name="A", territories=["Germany"], capacity=1)
    with pytest.raises(ValidationError, match="queue"):
        Roster(version="t", reps=[Rep(rep_id="unassigned", name="A", territories=["DE"], capacity=1)])


# -- decisions lost on their way -------------------------------------------------------
# A desk whose worker dies after storing its state but before its decisions reach
# the broker gets the request again, finds its work done, and must send them again.


def test_a_release_that_comes_again_sends_again_what_it_gave_queued_deals() -> None:
    book = Book()
    for n in range(6):
        book.place(f"l{n}", "DE")
    decided = book.release("l1", Outcome.LOST)
    assert owners(decided) == [("l4", book.owner("l4"))]
    desk, queued = book.desk(), dict(book.queue.data)
    assert owners(book.release("l1", Outcome.LOST)) == owners(decided)
    assert (book.desk(), book.queue.data) == (desk, queued)  # and nothing else changes


def test_a_place_that_comes_again_sends_again_what_it_gave_queued_deals() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")
    book.roster = Roster(version="t2", reps=[Rep(rep_id="fr", name="C", territories=["FR"], capacity=3)])
    first = book.place("f3", "FR")
    assert owners(first) == [("f2", "fr"), ("f3", "fr")]
    desk = book.desk("desk:FR")
    # Its own answer first, then what it decided for the deal that waited.
    assert owners(book.place("f3", "FR")) == [("f3", "fr"), ("f2", "fr")]
    assert book.desk("desk:FR") == desk
    book.release("f3")
    assert owners(book.place("f3", "FR")) == [("f2", "fr")]  # closed: no answer of its own


def test_a_drain_that_comes_again_sends_again_what_it_decided() -> None:
    book = Book(FR_ONLY)
    book.place("first", "FR")
    book.backlog("FR", MAX_SKIPS + 1)
    book.place("later", "FR")
    for n in range(1, MAX_SKIPS + 2):
        book.release(f"backlog-{n}", Outcome.LOST)
    request = ReleaseDeal(desk="desk:FR", lead_id="first", outcome=Outcome.WON, at=at(99))
    assert owners(book.release("first")) == [("later", "fr")]  # through a DrainDesk
    follow_up = go_on(request)
    assert follow_up.drain_id == "release/first#1"
    desk, queued = book.desk("desk:FR"), dict(book.queue.data)
    assert owners(book.drain(follow_up)) == [("later", "fr")]
    assert (book.desk("desk:FR"), book.queue.data) == (desk, queued)
    # One sent before drains had ids is a new drain: here it finds nothing to do.
    assert book.drain(DrainDesk(desk="desk:FR")) == []
    assert go_on(follow_up).drain_id == "release/first#2"


def test_a_desk_keeps_the_decisions_of_its_last_drains_only() -> None:
    book = Book(FR_ONLY)
    for n in range(KEPT_DRAINS + 5):
        book.drain(DrainDesk(desk="desk:FR", after=f"release/x{n}", n=1))
    kept = book.desk("desk:FR").drains
    assert list(kept) == [f"release/x{n}#1" for n in range(5, KEPT_DRAINS + 5)]
