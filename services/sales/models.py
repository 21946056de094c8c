"""Sales' HTTP request and response bodies."""

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import LostReason, Outcome
from services.sales.domain.catalog import OrderedLine
from services.sales.domain.deals import Stage


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage


class ObjectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objection: str = Field(min_length=1, max_length=2000)
    resolution: str | None = Field(default=None, max_length=2000)


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    lines: list[OrderedLine] = Field(default_factory=list, description="For won: sku and quantity")
    lost_reason: LostReason | None = Field(default=None, description="For lost")
