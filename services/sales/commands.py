"""Sales' commands: HTTP writes, applied by the worker that owns the deal."""

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from schemas.events import LostReason, Outcome
from services.runtime.commands import LeadCommand
from services.sales.domain.catalog import OrderedLine
from services.sales.domain.deals import ContactChannel, Stage


class MoveStage(LeadCommand):
    kind: Literal["move_stage"] = "move_stage"
    stage: Stage
    proposal: list[OrderedLine] | None = None


class RecordObjection(LeadCommand):
    kind: Literal["record_objection"] = "record_objection"
    objection: str
    resolution: str | None


class RecordContact(LeadCommand):
    kind: Literal["record_contact"] = "record_contact"
    channel: ContactChannel
    note: str | None


class CloseDeal(LeadCommand):
    kind: Literal["close_deal"] = "close_deal"
    outcome: Outcome
    lines: list[OrderedLine]
    lost_reason: LostReason | None


class AssignDeal(LeadCommand):
    """The assignment desk's decision for a deal; sent by the desk, not over HTTP.
    Through the command topic, it is applied in order with the deal's other writes."""

    kind: Literal["assign_deal"] = "assign_deal"
    owner: str | None
    decided_at: AwareDatetime


SalesCommand = Annotated[
    MoveStage | RecordObjection | RecordContact | CloseDeal | AssignDeal, Field(discriminator="kind")
]
