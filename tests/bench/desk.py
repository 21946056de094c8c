"""Desk bench: what a placement costs with 10 and with 10,000 deals queued.

"Benchmark with 10,000 queued deals: a placement still costs the same as with 10."
Runs the pure assignment domain (services/sales/domain/assignment.py) the way the
desk's handler does, against tables held as JSON bytes like the workers' (one
decode per read, one encode per write), without Kafka: the desk's own cost. For
each queue length it times, per request, a placement that queues (every rep is
full), a redelivered placement, and a release whose freed slot goes to the head
of the queue, and prints the desk value's size: none of them grows with the queue.

    .venv/bin/python -m tests.bench.desk [--repeats 1000] [--rounds 5]

The two queues are measured in turns, round after round, and the best round of
each is printed (a shared machine's noise only adds).
"""

import argparse
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from pydantic import BaseModel

from schemas.events import Outcome
from services.sales.domain.assignment import (
    Change,
    Desk,
    PlaceDeal,
    Placement,
    QueueEntry,
    ReleaseDeal,
    Rep,
    Roster,
    place,
    release,
)

M = TypeVar("M", bound=BaseModel)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ROSTER = Roster(
    version="bench",
    reps=[
        Rep(rep_id="de-1", name="A", territories=["DE", "AT"], capacity=40),
        Rep(rep_id="de-2", name="B", territories=["DE", "CH"], capacity=40),
    ],
)
COUNTRIES = ("DE", "AT", "CH")


class Table(Generic[M]):
    """A table of JSON bytes, as ModelTable keeps it."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.raw: dict[str, bytes] = {}

    def get(self, key: str, /) -> M | None:
        raw = self.raw.get(key)
        return None if raw is None else self.model.model_validate_json(raw)

    def __setitem__(self, key: str, value: M) -> None:
        self.raw[key] = value.model_dump_json().encode()


class Desks:
    """One desk's tables and the handler's steps around the pure functions."""

    def __init__(self) -> None:
        self.key = ROSTER.desk_key("DE")
        self.desk = Table(Desk)
        self.placements = Table(Placement)
        self.queue = Table(QueueEntry)
        self.now = T0
        # Leads given to a rep, oldest first: the ones to release.
        self.assigned: deque[str] = deque()

    def handle(self, decide: Callable[[Desk], Change]) -> None:
        book = self.desk.get(self.key) or Desk()
        change = decide(book)
        self.assigned.extend(d.lead_id for d in change.decisions if d.owner is not None)
        for key, entry in change.queue.items():
            self.queue[key] = entry
        for key, placement in change.placements.items():
            self.placements[key] = placement
        if change.desk != book:
            self.desk[self.key] = change.desk
        for key in change.dequeued:
            self.queue.raw.pop(key, None)

    def place(self, lead_id: str, country: str) -> None:
        self.now += timedelta(seconds=1)
        request = PlaceDeal(desk=self.key, lead_id=lead_id, country=country, requested_at=self.now)
        self.handle(
            lambda book: place(
                book, ROSTER, request, placements=self.placements, queue=self.queue, now=self.now
            )
        )

    def release(self, lead_id: str, outcome: Outcome = Outcome.WON) -> None:
        self.now += timedelta(seconds=1)
        request = ReleaseDeal(desk=self.key, lead_id=lead_id, outcome=outcome, at=self.now)
        self.handle(
            lambda book: release(
                book, ROSTER, request, placements=self.placements, queue=self.queue, now=self.now
            )
        )


def full_desk(queued: int) -> Desks:
    """Every rep full, then `queued` deals waiting, by real requests."""
    desks = Desks()
    for n in range(sum(rep.capacity for rep in ROSTER.reps)):
        desks.place(f"owned-{n}", "DE")
    for n in range(queued):
        desks.place(f"queued-{n}", COUNTRIES[n % len(COUNTRIES)])
    return desks


def timed(seconds: list[float], request: Callable[..., None], *args: str) -> None:
    start = time.perf_counter()
    request(*args)
    seconds.append(time.perf_counter() - start)


def measure(desks: Desks, queued: int, repeats: int, round_: int) -> dict[str, float]:
    """Microseconds per request, the queue kept at `queued` deals by untimed requests."""
    placing: list[float] = []
    redelivering: list[float] = []
    releasing: list[float] = []
    for n in range(round_ * repeats, (round_ + 1) * repeats):
        # A new deal queues (every rep is full); then it closes, untimed, leaving its
        # entry behind as a deal closed while queued.
        timed(placing, desks.place, f"new-{n}", "DE")
        timed(redelivering, desks.place, f"new-{n}", "DE")
        desks.release(f"new-{n}", Outcome.LOST)
        # A deal closes: its slot goes to the oldest waiting deal; one more arrives, untimed.
        timed(releasing, desks.release, desks.assigned.popleft())
        desks.place(f"more-{n}", COUNTRIES[n % len(COUNTRIES)])
    book = desks.desk.get(desks.key)
    assert book is not None
    assert book.waiting == queued, "the queue was not kept at its length"
    return {
        "place (queued)": sum(placing) / repeats * 1e6,
        "place (redelivered)": sum(redelivering) / repeats * 1e6,
        "release (head assigned)": sum(releasing) / repeats * 1e6,
        "desk value (bytes)": float(len(desks.desk.raw[desks.key])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=1000, help="requests timed per figure and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating the two queues")
    args = parser.parse_args()
    sizes = (10, 10_000)
    desks = {queued: full_desk(queued) for queued in sizes}
    rounds: dict[int, list[dict[str, float]]] = {queued: [] for queued in sizes}
    for round_ in range(args.rounds):
        for queued in sizes:
            rounds[queued].append(measure(desks[queued], queued, args.repeats, round_))
    # The best round of each: the machine's noise only ever adds.
    results = {q: {name: min(r[name] for r in rounds[q]) for name in rounds[q][0]} for q in sizes}
    names = list(results[10])
    print(f"{'per request (µs)':<26}{'10 queued':>12}{'10,000 queued':>16}")
    for name in names:
        few, many = results[10][name], results[10_000][name]
        print(f"{name:<26}{few:>12.1f}{many:>16.1f}")


if __name__ == "__main__":
    main()
