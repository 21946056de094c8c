"""Engagement: what a lead does that tells marketing how interested it is."""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict


class ActivityType(StrEnum):
    PAGE_VIEW = "page_view"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR_ATTENDED = "webinar_attended"
    EVENT_VISIT = "event_visit"
    FORM_SUBMIT = "form_submit"
    PRICING_PAGE_VIEW = "pricing_page_view"
    DEMO_REQUEST = "demo_request"
    UNSUBSCRIBE = "unsubscribe"
    # A second capture of the same person counts as engagement on the first.
    RECAPTURE = "recapture"


class Activity(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: ActivityType
    at: AwareDatetime
    # The campaign that brought it about (an email's, a webinar's), if any: a touch.
    campaign_id: str | None = None


def decayed(points: int, age_days: float, half_life_days: float) -> float:
    """Points of an activity `age_days` old: halved every `half_life_days`."""
    return float(points * 0.5 ** (max(age_days, 0.0) / half_life_days))


def age_in_days(then: datetime, now: datetime) -> float:
    return (now - then).total_seconds() / 86400
