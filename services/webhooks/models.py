"""Webhooks' HTTP request bodies."""

from typing import Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.webhooks.domain.subscriptions import EVENT_TYPES, EventType, Filter


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="Where deliveries are POSTed")
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    filter: Filter = Filter()
    description: str = Field(default="", max_length=500)
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="Your own signing secret (whsec_ and 24 to 64 random bytes in base64), so that "
        "you can verify the signed test event too; by default Leadflow makes one",
    )


class ChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: bool | None = Field(default=None, description="true pauses, false resumes")
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    filter: Filter | None = None
    description: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("say what to change: paused, event_types, filter or description")
        return self


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: float | None = Field(
        default=None, ge=0, le=7 * 24 * 3600, description="How long the old secret also signs"
    )


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(default=None, description="Replay events recorded from this time on")
    event_id: UUID | None = Field(default=None, description="Replay this one event")

    @model_validator(mode="after")
    def _one_or_other(self) -> Self:
        if self.since is None and self.event_id is None:
            raise ValueError("give since, event_id, or both")
        return self
