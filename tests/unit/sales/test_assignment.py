"""Assignment: territory first, then round robin among reps with room, else the queue."""

from collections.abc import Iterable

import pytest
from pydantic import ValidationError

from schemas.events import Outcome
from services.sales.domain.assignment import (
    Change,
    Decision,
    Desk,
    PlaceDeal,
    Placement,
    ReleaseDeal,
    Rep,
    Roster,
    place,
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


class Book:
    """The desk's state as the handler keeps it: the desk and its placements."""

    def __init__(self, roster: Roster = ROSTER) -> None:
        self.roster = roster
        self.desk = Desk()
        self.placements: dict[str, Placement] = {}
        self.minute = 0

    def _apply(self, change: Change) -> list[Decision]:
        self.desk = change.desk
        self.placements |= {p.lead_id: p for p in change.placements}
        return change.decisions

    def _queued(self) -> dict[str, Placement]:
        return {lead_id: self.placements[lead_id] for lead_id in self.desk.queue}

    def place(self, lead_id: str, country: str | None) -> list[Decision]:
        self.minute += 1
        request = PlaceDeal(lead_id=lead_id, country=country, requested_at=at(self.minute))
        known = self.placements.get(lead_id)
        return self._apply(place(self.desk, self.roster, request, known, self._queued(), at(self.minute)))

    def release(self, lead_id: str, outcome: Outcome = Outcome.WON) -> list[Decision]:
        self.minute += 1
        request = ReleaseDeal(lead_id=lead_id, outcome=outcome, at=at(self.minute))
        known = self.placements.get(lead_id)
        return self._apply(release(self.desk, self.roster, request, known, self._queued(), at(self.minute)))

    def owner(self, lead_id: str) -> str | None:
        return self.placements[lead_id].owner


def owners(decisions: Iterable[Decision]) -> list[tuple[str, str | None]]:
    return [(d.lead_id, d.owner) for d in decisions]


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


def test_full_reps_send_deals_to_the_queue_never_to_another_territory() -> None:
    book = Book()
    book.place("f1", "FR")
    assert owners(book.place("f2", "FR")) == [("f2", None)]
    assert book.desk.queue == ["f2"]
    assert book.desk.load("fr").open == 1
    assert book.desk.load("world").open == 0


def test_without_any_eligible_rep_a_deal_waits_in_the_queue() -> None:
    roster = Roster(version="t", reps=[Rep(rep_id="de", name="A", territories=["DE"], capacity=5)])
    book = Book(roster)
    assert owners(book.place("l1", "JP")) == [("l1", None)]
    assert book.desk.queue == ["l1"]


def test_capacity_is_never_exceeded_and_load_is_counted() -> None:
    book = Book()
    for n in range(6):
        book.place(f"l{n}", "DE")
    assert book.desk.load("de-1").open == 2
    assert book.desk.load("de-2").open == 2
    assert book.desk.queue == ["l4", "l5"]


def test_closing_a_deal_frees_the_slot_for_the_oldest_queued_deal() -> None:
    book = Book()
    for n in range(6):
        book.place(f"l{n}", "DE")
    freed = book.owner("l1")
    decisions = book.release("l1", Outcome.LOST)
    assert owners(decisions) == [("l4", freed)]
    assert book.desk.queue == ["l5"]
    assert book.desk.load(str(freed)).open == 2
    assert book.desk.load(str(freed)).lost == 1
    assert (book.desk.won, book.desk.lost) == (0, 1)


def test_a_queued_deal_that_closes_leaves_the_queue() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")
    assert book.release("f2", Outcome.LOST) == []
    assert book.desk.queue == []
    assert book.desk.load("fr").open == 1


def test_a_queued_deal_for_another_territory_does_not_take_the_freed_slot() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")  # queued for fr
    book.place("d1", "DE")
    assert book.release("d1") == []
    assert book.desk.queue == ["f2"]


def test_a_bigger_capacity_in_the_roster_serves_the_queue_on_the_next_deal() -> None:
    book = Book()
    book.place("f1", "FR")
    book.place("f2", "FR")
    book.roster = Roster(version="t2", reps=[Rep(rep_id="fr", name="C", territories=["FR"], capacity=3)])
    assert owners(book.place("f3", "FR")) == [("f2", "fr"), ("f3", "fr")]


def test_a_redelivered_request_gets_the_same_answer_and_changes_nothing() -> None:
    book = Book()
    first = book.place("l1", "DE")
    desk = book.desk
    again = book.place("l1", "DE")
    assert owners(again) == owners(first)
    assert book.desk == desk
    assert book.desk.load("de-1").open == 1


def test_a_redelivered_release_changes_nothing() -> None:
    book = Book()
    book.place("l1", "DE")
    book.release("l1", Outcome.WON)
    desk = book.desk
    assert book.release("l1", Outcome.WON) == []
    assert book.desk == desk
    assert (book.desk.won, book.desk.load("de-1").open, book.desk.load("de-1").won) == (1, 0, 1)
    # And a closed deal asked about again gets no decision.
    assert book.place("l1", "DE") == []


def test_a_replayed_desk_decides_the_same() -> None:
    # The desk sends decisions before storing: replayed on the same state, it decides the same.
    book = Book()
    book.place("l1", "DE")
    request = PlaceDeal(lead_id="l2", country="DE", requested_at=at(9))
    first = place(book.desk, ROSTER, request, None, {}, at(9))
    second = place(book.desk, ROSTER, request, None, {}, at(9))
    assert first == second


def test_the_win_rate_counts_every_close() -> None:
    book = Book()
    assert book.desk.win_rate is None
    for lead_id, outcome in [
        ("a", Outcome.WON),
        ("b", Outcome.LOST),
        ("c", Outcome.LOST),
        ("d", Outcome.WON),
    ]:
        book.place(lead_id, "DE")
        book.release(lead_id, outcome)
    assert book.desk.win_rate == 0.5


def test_a_release_the_desk_never_placed_counts_once() -> None:
    book = Book()
    book.release("ghost", Outcome.WON)
    book.release("ghost", Outcome.WON)
    assert book.desk.won == 1


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


def test_the_shipped_roster_loads() -> None:
    roster = Roster.load(DEFAULT_REPS_FILE)
    assert roster.eligible("NO")  # YAML's "Norway problem" would have made it false
    assert [rep.rep_id for rep in roster.eligible("BR")] == ["rep-international"]
