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

How it runs on several workers
    Deals are partitioned by lead id across workers, but a rep's load is global:
    two workers deciding on their own would both see room for the last slot. So
    one agent owns all of assignment: the worker that opens a deal sends a
    `PlaceDeal` request to the internal topic `<app id>-assignment-requests`,
    always under the single key `DESK_KEY`, so every request lands on one
    partition and one agent (the "desk") handles them one at a time. The desk
    keeps its state in two tables written only from that partition: `desk`
    (one `Desk` value: each rep's load, the round-robin turn, the queue, won and
    lost counts) and `placements` (one `Placement` per lead: who got it, or
    queued, and whether it is closed). It sends each `Decision` to the deal as a
    command on sales' command topic, keyed by lead id, so it reaches the
    partition, and the worker, that holds the deal and is applied in order with
    the deal's other writes (a close never interleaves with an assignment).
    Closing a deal sends a `ReleaseDeal` on the single-key topic; the desk frees
    the rep's slot, counts the outcome and hands the slot to the queue.

Under redelivery
    Every request is idempotent at the desk, by the lead's placement: asked to
    place a lead it has placed, the desk sends the same decision again and
    changes nothing; asked to release a closed placement, it does nothing. The
    deal takes only its first owner and none once closed (`deals.assign`). The
    worker opening a deal stores it first and then asks; a redelivered
    `lead.qualified` finds the deal still pending and asks again, which is
    harmless. The desk sends its decisions before it stores its state, and its
    functions are deterministic, so a desk that dies in between decides the
    same again when the request is redelivered.

These functions are pure: the desk's handler fetches the state they need and
stores what they return.
"""

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Protocol

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.events import Outcome

# The one key of every assignment request: one partition, one desk.
DESK_KEY = "desk"
# Covers every country no rep covers by name.
ANYWHERE = "*"
# How the API names the queue (GET /deals?owner=unassigned); no rep may have this id.
UNASSIGNED = "unassigned"


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

    @classmethod
    def load(cls, path: Path) -> "Roster":
        return cls.model_validate(yaml.safe_load(path.read_text()))


class RepLoad(BaseModel):
    open: int = 0
    # The desk's turn at the rep's last assignment; 0: never assigned.
    last_turn: int = 0
    won: int = 0
    lost: int = 0


class Desk(BaseModel):
    """The desk's whole state but the placements: small, bounded by open deals."""

    turn: int = 0
    reps: dict[str, RepLoad] = Field(default_factory=dict)
    queue: list[str] = Field(default_factory=list, description="Lead ids waiting for a rep, oldest first")
    won: int = 0
    lost: int = 0

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

    @property
    def closed(self) -> bool:
        return self.outcome is not None


class PlaceDeal(BaseModel):
    kind: Literal["place"] = "place"
    lead_id: str = Field(min_length=1)
    country: str | None
    requested_at: AwareDatetime


class ReleaseDeal(BaseModel):
    kind: Literal["release"] = "release"
    lead_id: str = Field(min_length=1)
    outcome: Outcome
    at: AwareDatetime


DeskRequest = Annotated[PlaceDeal | ReleaseDeal, Field(discriminator="kind")]


class Decision(BaseModel):
    """Sent back to the deal: its owner, or None while it waits in the queue."""

    lead_id: str = Field(min_length=1)
    owner: str | None
    decided_at: AwareDatetime


@dataclass(frozen=True)
class Change:
    desk: Desk
    placements: list[Placement] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


class QueuedPlacements(Protocol):
    """The placements of queued leads, looked up one by one: the queue can be long."""

    def get(self, lead_id: str, /) -> Placement | None: ...


def place(
    desk: Desk,
    roster: Roster,
    request: PlaceDeal,
    known: Placement | None,
    queued: QueuedPlacements,
    now: datetime,
) -> Change:
    """Place a new deal with a rep or in the queue. `known`: the lead's placement
    if the desk has one; `queued`: the placements of the leads in the queue."""
    if known is not None:
        # Asked again: answer what was decided (nothing once the deal is closed).
        if known.closed:
            return Change(desk)
        return Change(desk, decisions=[Decision(lead_id=known.lead_id, owner=known.owner, decided_at=now)])
    book = desk.model_copy(deep=True)
    # Those who waited go first, should a rep have room (a bigger capacity).
    placements, decisions = _drain(book, roster, queued, now)
    placement = Placement(lead_id=request.lead_id, country=request.country, requested_at=request.requested_at)
    rep = _pick(book, roster, request.country)
    if rep is None:
        book.queue.append(request.lead_id)
    else:
        placement = _give(book, rep, placement, now)
    decision = Decision(lead_id=request.lead_id, owner=placement.owner, decided_at=now)
    return Change(book, [*placements, placement], [*decisions, decision])


def release(
    desk: Desk,
    roster: Roster,
    request: ReleaseDeal,
    known: Placement | None,
    queued: QueuedPlacements,
    now: datetime,
) -> Change:
    """A deal closed: free its rep's slot (or its place in the queue), count the
    outcome and hand free slots to the queue."""
    if known is not None and known.closed:
        return Change(desk)
    book = desk.model_copy(deep=True)
    if known is None:
        # Opened before the desk knew it; recorded so a second release counts nothing.
        known = Placement(lead_id=request.lead_id, country=None, requested_at=request.at)
    elif known.owner is not None:
        load = book.reps.setdefault(known.owner, RepLoad())
        load.open = max(0, load.open - 1)
        if request.outcome is Outcome.WON:
            load.won += 1
        else:
            load.lost += 1
    elif known.lead_id in book.queue:
        book.queue.remove(known.lead_id)
    if request.outcome is Outcome.WON:
        book.won += 1
    else:
        book.lost += 1
    closed = known.model_copy(update={"outcome": request.outcome})
    placements, decisions = _drain(book, roster, queued, now)
    return Change(book, [closed, *placements], decisions)


def _pick(book: Desk, roster: Roster, country: str | None) -> Rep | None:
    with_room = [rep for rep in roster.eligible(country) if book.load(rep.rep_id).open < rep.capacity]
    # min() keeps the first of equals: roster order breaks ties.
    return min(with_room, key=lambda rep: book.load(rep.rep_id).last_turn, default=None)


def _give(book: Desk, rep: Rep, placement: Placement, now: datetime) -> Placement:
    book.turn += 1
    load = book.reps.setdefault(rep.rep_id, RepLoad())
    load.open += 1
    load.last_turn = book.turn
    return placement.model_copy(update={"owner": rep.rep_id, "placed_at": now})


def _drain(
    book: Desk, roster: Roster, queued: QueuedPlacements, now: datetime
) -> tuple[list[Placement], list[Decision]]:
    """Give queued deals, oldest first, to eligible reps with room."""
    if not book.queue or not any(book.load(rep.rep_id).open < rep.capacity for rep in roster.reps):
        # The usual case under load: everyone is full; don't walk the queue.
        return [], []
    placements: list[Placement] = []
    waiting: list[str] = []
    for lead_id in book.queue:
        placement = queued.get(lead_id)
        rep = _pick(book, roster, placement.country) if placement is not None else None
        if placement is None or rep is None:
            waiting.append(lead_id)
            continue
        placements.append(_give(book, rep, placement, now))
    book.queue = waiting
    decisions = [Decision(lead_id=p.lead_id, owner=p.owner, decided_at=now) for p in placements]
    return placements, decisions
