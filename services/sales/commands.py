"""Sales' commands: HTTP writes, applied by the worker that owns the deal."""

from typing import Annotated, Literal

from pydantic import Field

from schemas.events import LostReason, Outcome
from services.runtime.commands import Command
from services.sales.domain.catalog import OrderedLine
from services.sales.domain.deals import Stage


class MoveStage(Command):
    kind: Literal["move_stage"] = "move_stage"
    lead_id: str
    stage: Stage


class RecordObjection(Command):
    kind: Literal["record_objection"] = "record_objection"
    lead_id: str
    objection: str
    resolution: str | None


class CloseDeal(Command):
    kind: Literal["close_deal"] = "close_deal"
    lead_id: str
    outcome: Outcome
    lines: list[OrderedLine]
    lost_reason: LostReason | None


SalesCommand = Annotated[MoveStage | RecordObjection | CloseDeal, Field(discriminator="kind")]
