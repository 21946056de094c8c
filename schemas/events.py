"""Event data models: what each topic's CloudEvent carries in `data`.

Each model names its topic (`TYPE`) and the version of its data schema
(`VERSION`). A change that breaks subscribers bumps `VERSION`; the
compatibility test in tests/contract guards that.
"""

from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas import topics
from schemas.money import Amount, Currency, Percent


class EventData(BaseModel):
    # Ignore fields we do not know yet: a newer producer must not break an older consumer.
    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]

    @classmethod
    def dataschema(cls) -> str:
        return dataschema_uri(cls.TYPE, cls.VERSION)


def dataschema_uri(event_type: str, version: int) -> str:
    return f"urn:leadflow:schema:{event_type}:v{version}"


class Channel(StrEnum):
    ADVERTISING = "advertising"
    DIRECT_MAIL = "direct_mail"
    TELEMARKETING = "telemarketing"
    WEB = "web"
    EMAIL = "email"
    SOCIAL = "social"
    EVENT = "event"
    REFERRAL = "referral"
    PARTNER = "partner"
    OTHER = "other"


class Intent(StrEnum):
    DEMO_REQUEST = "demo_request"
    CONTACT_SALES = "contact_sales"


class Outcome(StrEnum):
    WON = "won"
    LOST = "lost"


class LostReason(StrEnum):
    NO_BUDGET = "no_budget"
    NO_NEED = "no_need"
    TIMING = "timing"
    COMPETITOR = "competitor"
    UNRESPONSIVE = "unresponsive"
    NOT_A_REAL_LEAD = "not_a_real_lead"
    OTHER = "other"


class Contact(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    title: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)


class Company(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(max_length=200)
    industry: str | None = Field(default=None, max_length=100)
    size: int | None = Field(default=None, ge=1, description="Number of employees")
    country: str | None = Field(default=None, pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class ScoreReason(BaseModel):
    """One qualification rule that counted, and its points."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rule: str
    points: int
    detail: str = ""


class LeadCreated(EventData):
    TYPE = topics.LEAD_CREATED
    VERSION = 1

    lead_id: str
    campaign_id: str | None
    channel: Channel
    contact: Contact
    company: Company
    consent: bool
    intent: Intent | None
    captured_at: AwareDatetime


class LeadQualified(EventData):
    TYPE = topics.LEAD_QUALIFIED
    VERSION = 1

    lead_id: str
    campaign_id: str | None
    score: int
    threshold: int
    reasons: list[ScoreReason]
    contact: Contact
    company: Company
    qualified_at: AwareDatetime


class DealLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    name: str
    quantity: int = Field(gt=0)
    unit_price: Amount = Field(description="What the customer pays per unit, net of any discount")
    list_price: Amount | None = Field(default=None, description="The catalogue's price, before the discount")
    discount_percent: Percent | None = Field(default=None, description="The negotiated discount, if any")


class Customer(BaseModel):
    """Who bought: the lead's company and contact, as sales knew them at close."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    company: Company
    contact: Contact


class DealClosed(EventData):
    TYPE = topics.DEAL_CLOSED
    VERSION = 1

    deal_id: str
    lead_id: str
    campaign_id: str | None
    outcome: Outcome
    lost_reason: LostReason | None = None
    owner: str | None = Field(description="The rep who owned the deal")
    customer: Customer
    lines: list[DealLine]
    amount: Amount
    currency: Currency
    opened_at: AwareDatetime
    first_contact_at: AwareDatetime | None
    closed_at: AwareDatetime
    closed_by: str | None = Field(
        default=None, max_length=256, description="Who closed it: the subject of their API token"
    )

    @model_validator(mode="after")
    def _outcome_fits(self) -> "DealClosed":
        if self.outcome is Outcome.LOST and self.lost_reason is None:
            raise ValueError("a lost deal needs a lost_reason")
        if self.outcome is Outcome.WON and not self.lines:
            raise ValueError("a won deal needs at least one line")
        return self


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    name: str
    quantity: int = Field(gt=0)
    unit_price: Amount
    line_total: Amount


class OrderCreated(EventData):
    TYPE = topics.ORDER_CREATED
    VERSION = 1

    order_id: str
    deal_id: str
    lead_id: str
    customer: Customer
    lines: list[OrderLine]
    total: Amount
    currency: Currency
    created_at: AwareDatetime


class DealStage(StrEnum):
    """The sales process's stages, in order; `won` and `lost` end it."""

    PROSPECTING = "prospecting"
    QUALIFYING = "qualifying"
    PRESENTING = "presenting"
    HANDLING_OBJECTIONS = "handling_objections"
    CLOSING = "closing"
    WON = "won"
    LOST = "lost"


class DealChange(StrEnum):
    OPENED = "opened"
    ASSIGNED = "assigned"
    STAGE_CHANGED = "stage_changed"
    FIRST_CONTACT = "first_contact"


class DealUpdated(EventData):
    """An open deal changed: opened, assigned to a rep, moved to another stage, or
    touched for the first time. Each event carries the deal's state after the change,
    so a subscriber needs no earlier one. The close is `deal.closed`, not this."""

    TYPE = topics.DEAL_UPDATED
    VERSION = 1

    deal_id: str
    lead_id: str
    campaign_id: str | None
    changes: list[DealChange] = Field(
        min_length=1, description="What changed (a move can be the first contact)"
    )
    stage: DealStage
    previous_stage: DealStage | None = Field(description="The stage it left; null unless the stage changed")
    owner: str | None = Field(description="The rep who owns the deal; null while unassigned")
    opened_at: AwareDatetime
    stage_entered_at: AwareDatetime
    first_contact_at: AwareDatetime | None
    follow_up_due_at: AwareDatetime = Field(
        description="When the follow-up SLA runs out: a first contact after it (or none by then) breaches it"
    )
    amount: Amount | None = Field(
        default=None, description="What the current proposal is worth, net; null: none"
    )
    currency: Currency | None = None
    updated_at: AwareDatetime
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who moved the deal (the subject of their API token), for a stage change",
    )


class OrderStatus(StrEnum):
    CREATED = "created"
    CONFIRMED = "confirmed"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class OrderUpdated(EventData):
    """An order moved on in its lifecycle: confirmed, fulfilled or cancelled (each
    happens at most once per order). Its creation is `order.created`."""

    TYPE = topics.ORDER_UPDATED
    VERSION = 1

    order_id: str
    deal_id: str
    lead_id: str
    status: OrderStatus
    previous_status: OrderStatus
    total: Amount
    currency: Currency
    updated_at: AwareDatetime
    by: str | None = Field(
        default=None,
        max_length=256,
        description="Who moved it (the subject of their API token); null: Leadflow",
    )


EVENT_DATA: dict[str, type[EventData]] = {
    model.TYPE: model
    for model in (LeadCreated, LeadQualified, DealClosed, OrderCreated, DealUpdated, OrderUpdated)
}

__all__ = [
    "EVENT_DATA",
    "Channel",
    "Company",
    "Contact",
    "Customer",
    "DealChange",
    "DealClosed",
    "DealLine",
    "DealStage",
    "DealUpdated",
    "EventData",
    "Intent",
    "LeadCreated",
    "LeadQualified",
    "LostReason",
    "OrderCreated",
    "OrderLine",
    "OrderStatus",
    "OrderUpdated",
    "Outcome",
    "ScoreReason",
    "dataschema_uri",
]
