"""Marketing's commands: HTTP writes, applied by the worker that owns their key."""

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from schemas.events import Channel
from services.marketing.domain.activities import ActivityType
from services.marketing.domain.campaigns import Budget, Campaign, Target
from services.marketing.domain.capture import Capture
from services.runtime.commands import Command, LeadCommand


class CreateCampaign(Command):
    kind: Literal["create_campaign"] = "create_campaign"
    campaign_id: str
    name: str
    channel: Channel
    budget: Budget
    starts_on: date
    ends_on: date
    target: Target

    @property
    def key(self) -> str:
        return self.campaign_id


class CaptureLead(LeadCommand):
    kind: Literal["capture_lead"] = "capture_lead"
    capture: Capture
    # The campaign the capture names, as looked up by the route (campaigns live on
    # their own partitions); None when it names none, or one that does not exist.
    campaign: Campaign | None = None


class RecordActivity(LeadCommand):
    kind: Literal["record_activity"] = "record_activity"
    type: ActivityType
    campaign_id: str | None = None


MarketingCommand = Annotated[CreateCampaign | CaptureLead | RecordActivity, Field(discriminator="kind")]
