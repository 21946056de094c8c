"""The CloudEvents 1.0 envelope (structured JSON mode) around every record value."""

from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar, cast
from uuid import UUID, uuid4, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

from schemas.events import EventData

CONTENT_TYPE = "application/cloudevents+json"

D = TypeVar("D", bound=EventData)


class CloudEvent(BaseModel, Generic[D]):
    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    source: str
    type: str
    time: AwareDatetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    data: D

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _matches_data(self) -> "CloudEvent[D]":
        expected = type(self.data)
        if self.type != expected.TYPE:
            raise ValueError(f"type {self.type!r} does not match data of {expected.TYPE!r}")
        if self.dataschema != expected.dataschema():
            raise ValueError(f"dataschema {self.dataschema!r} is not {expected.dataschema()!r}")
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def once_id(namespace: UUID, event_type: str, once_per: str) -> UUID:
    """The id of an event that happens once per `once_per` (a lead, a deal, an order):
    the same every time it is built, so a republished copy repeats it."""
    return uuid5(namespace, f"{event_type}:{once_per}")


def new_event(
    data: D, *, source: str, subject: str, at: datetime | None = None, event_id: UUID | None = None
) -> CloudEvent[D]:
    """Wrap `data` in an envelope; `subject` is the lead_id (also the record key).
    Without `event_id` the event gets a fresh random id."""
    model = cast(type[CloudEvent[D]], CloudEvent[type(data)])  # type: ignore[misc]
    return model(
        id=event_id or uuid4(),
        source=source,
        type=data.TYPE,
        time=at or datetime.now(UTC),
        subject=subject,
        dataschema=data.dataschema(),
        data=data,
    )
