"""Sales' HTTP request and response bodies."""

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import LostReason, Outcome
from services.sales.domain.assignment import Desk, Pool, Rep
from services.sales.domain.catalog import OrderedLine
from services.sales.domain.deals import ContactChannel, Deal, Stage
from services.sales.domain.follow_up import FollowUp, follow_up

# Lines a proposal or a close may have: the catalogue has a handful of products. Unbounded,
# one request made a deal bigger than Kafka takes, and the worker stopped (issue #9).
MAX_LINES = 100


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage
    proposal: list[OrderedLine] | None = Field(
        default=None,
        max_length=MAX_LINES,
        description="What the rep now offers (sku, quantity, discount_percent), priced from the "
        "catalogue; it is what the deal adds to the pipeline value",
    )


class ObjectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objection: str = Field(min_length=1, max_length=2000)
    resolution: str | None = Field(default=None, max_length=2000)


class ContactRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ContactChannel
    note: str | None = Field(default=None, max_length=2000)


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    lines: list[OrderedLine] = Field(
        default_factory=list,
        max_length=MAX_LINES,
        description="For won: sku, quantity and any discount_percent",
    )
    lost_reason: LostReason | None = Field(default=None, description="For lost")


class DealView(Deal):
    """A deal as read: with where it stands against the follow-up SLA now."""

    follow_up: FollowUp
    time_in_stage_seconds: float

    @classmethod
    def of(cls, deal: Deal, now: datetime, sla: timedelta) -> "DealView":
        return cls(
            **dict(deal),
            follow_up=follow_up(deal, now, sla),
            time_in_stage_seconds=deal.current_visit.seconds(now),
        )


class RepView(BaseModel):
    rep_id: str
    name: str
    territories: list[str]
    capacity: int
    open_deals: int
    available: int
    won: int
    lost: int
    desk: str = Field(description="The assignment desk that decides the rep's deals (GET /desks/{desk})")

    @classmethod
    def of(cls, rep: Rep, desk: Desk, key: str) -> "RepView":
        load = desk.load(rep.rep_id)
        return cls(
            rep_id=rep.rep_id,
            name=rep.name,
            territories=rep.territories,
            capacity=rep.capacity,
            open_deals=load.open,
            available=max(0, rep.capacity - load.open),
            won=load.won,
            lost=load.lost,
            desk=key,
        )


class DeskView(BaseModel):
    desk: str = Field(description="The desk's key: its pool's territories")
    territories: list[str]
    reps: list[RepView]
    unassigned: int = Field(description="Deals waiting in this desk's queue for a rep with room")
    won: int
    lost: int
    win_rate: float | None = Field(description="Won over closed deals of this desk; null before any close")

    @classmethod
    def of(cls, pool: Pool, desk: Desk) -> "DeskView":
        return cls(
            desk=pool.key,
            territories=list(pool.territories),
            reps=[RepView.of(rep, desk, pool.key) for rep in pool.reps],
            unassigned=desk.waiting,
            won=desk.won,
            lost=desk.lost,
            win_rate=desk.win_rate,
        )


class RepsView(BaseModel):
    items: list[RepView]
    unassigned: int = Field(description="Deals waiting in the queues of all desks for a rep with room")
    win_rate: float | None = Field(description="Won over closed deals, all desks; null before any close")
    roster_version: str


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(gt=0, le=10 * 365 * 86400)


class ClockView(BaseModel):
    now: AwareDatetime
    offset_seconds: float


class ForecastShare(BaseModel):
    """One worker's forecast sums and the partitions they cover (internal)."""

    partitions: list[int]
    sums: list[list[Any]]
