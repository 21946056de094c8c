"""Marketing's agents, with Faust's in-memory test context: commands and deal.closed,
and the leads they store, which campaign performance is summed from."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.envelope import new_event
from schemas.events import (
    Channel,
    Company,
    Contact,
    Customer,
    DealChange,
    DealClosed,
    DealLine,
    DealStage,
    DealUpdated,
    LeadCreated,
    LeadQualified,
    LostReason,
    OrderCreated,
    OrderLine,
    OrderStatus,
    OrderUpdated,
    Outcome,
)
from services.marketing.agents import (
    apply_commands,
    close_the_loop,
    follow_deals,
    follow_order_updates,
    follow_orders,
)
from services.marketing.app import campaigns, early_journeys, leads, runtime
from services.marketing.commands import CaptureLead, CreateCampaign, RecordActivity
from services.marketing.domain.activities import ActivityType
from services.marketing.domain.campaigns import Budget, Campaign, Target
from services.marketing.domain.capture import Capture
from services.marketing.domain.funnel import contribution, funnel_from
from services.marketing.domain.leads import LeadStatus
from services.marketing.domain.performance import counts_over
from tests.agents.conftest import Sent, clear, fake_io

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EXPO = Campaign(
    campaign_id="expo",
    name="Expo 2026",
    channel=Channel.EVENT,
    budget=Budget(amount=Decimal("10000.00"), currency="EUR"),
    starts_on=date(2026, 3, 1),
    ends_on=date(2026, 3, 31),
    created_at=NOW,
)


@pytest.fixture(autouse=True)
def _isolated(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake_io(runtime, sent, monkeypatch)
    yield from clear(leads, campaigns, early_journeys)


def capture_command(lead_id: str, campaign_id: str | None = "expo", **changes: object) -> CaptureLead:
    data = {
        "channel": Channel.EVENT,
        "campaign_id": campaign_id,
        "contact": Contact(email="ana@acme-industries.com", name="Ana", title="IT Manager"),
        "company": Company(name="Acme", industry="software", size=120, country="DE"),
        "consent": True,
        **changes,
    }
    # The route looked the campaign up; "expo" is the only one there is.
    campaign = EXPO if campaign_id == "expo" else None
    return CaptureLead(lead_id=lead_id, capture=Capture.model_validate(data), campaign=campaign)


def encoded(command: CaptureLead | RecordActivity) -> bytes:
    return command.model_dump_json().encode()


async def test_a_capture_creates_one_lead_however_often_it_is_delivered(sent: Sent) -> None:
    command = capture_command("lead-1")
    async with apply_commands.test_context() as agent:
        await agent.put(key=b"lead-1", value=encoded(command))
        first = leads.get("lead-1")
        await agent.put(key=b"lead-1", value=encoded(command))
    assert first is not None
    assert first.status is LeadStatus.NURTURING
    assert leads.get("lead-1") == first
    # Announced again on the redelivery, identical: subscribers drop the copy by id.
    created, again = sent.of_type("lead.created")
    assert isinstance(created, LeadCreated)
    assert created.lead_id == "lead-1"
    assert again == created
    assert (first.captures, first.recaptures) == (1, {})
    assert sent.dead_letters == []


async def test_a_second_capture_of_the_person_is_a_duplicate_not_a_lead(sent: Sent) -> None:
    async with apply_commands.test_context() as agent:
        await agent.put(key=b"lead-1", value=encoded(capture_command("lead-1")))
        await agent.put(key=b"lead-1", value=encoded(capture_command("lead-1", channel=Channel.REFERRAL)))
    lead = leads.get("lead-1")
    assert lead is not None
    assert lead.captures == 2
    assert lead.channel is Channel.EVENT
    assert len(sent.of_type("lead.created")) == 1
    assert (lead.campaign_id, lead.recaptures) == ("expo", {"expo": 1})


async def test_a_duplicate_capture_delivered_again_is_counted_once(sent: Sent) -> None:
    again = capture_command("lead-1", channel=Channel.REFERRAL)
    async with apply_commands.test_context() as agent:
        await agent.put(key=b"lead-1", value=encoded(capture_command("lead-1")))
        await agent.put(key=b"lead-1", value=encoded(again))
        once = leads.get("lead-1")
        await agent.put(key=b"lead-1", value=encoded(again))
    assert once is not None
    assert leads.get("lead-1") == once
    assert (once.captures, once.recaptures) == (2, {"expo": 1})
    assert sent.dead_letters == []


async def test_a_refused_capture_writes_and_publishes_nothing(sent: Sent) -> None:
    async with apply_commands.test_context() as agent:
        await agent.put(key=b"lead-2", value=encoded(capture_command("lead-2", campaign_id="unknown")))
        await agent.put(
            key=b"lead-2", value=encoded(capture_command("lead-2", channel=Channel.WEB, consent=False))
        )
    assert leads.get("lead-2") is None
    assert sent.events == []
    # A refusal is an answer to the caller, not a broken record.
    assert sent.dead_letters == []


async def test_engagement_qualifies_a_nurtured_lead_exactly_once(sent: Sent) -> None:
    steps = ["content_download", "webinar_attended", "pricing_page_view", "email_click", "event_visit"]
    async with apply_commands.test_context() as agent:
        await agent.put(key=b"lead-3", value=encoded(capture_command("lead-3")))
        for step in steps:
            command = RecordActivity(lead_id="lead-3", type=ActivityType(step))
            await agent.put(key=b"lead-3", value=encoded(command))
    lead = leads.get("lead-3")
    assert lead is not None
    assert lead.status is LeadStatus.QUALIFIED
    [qualified] = sent.of_type("lead.qualified")
    assert isinstance(qualified, LeadQualified)
    assert qualified.score >= qualified.threshold
    assert {r.rule for r in qualified.reasons} >= {"fit.industry", "engagement"}
    assert lead.qualified_at is not None
    assert qualified.qualified_at == lead.qualified_at


def deal_closed(lead_id: str, outcome: Outcome, lost_reason: LostReason | None = None) -> bytes:
    won = outcome is Outcome.WON
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id="expo",
        outcome=outcome,
        lost_reason=lost_reason,
        owner="rep-1",
        customer=Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana")),
        lines=[DealLine(sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("9000.00"))]
        if won
        else [],
        amount=Decimal("9000.00") if won else Decimal("0"),
        currency="EUR",
        opened_at=NOW,
        first_contact_at=NOW,
        closed_at=NOW,
    )
    # A fresh envelope each time: a producer that sends again makes a new event id.
    return new_event(data, source="/leadflow/sales", subject=lead_id).to_json()


async def captured(*lead_ids: str) -> None:
    async with apply_commands.test_context() as agent:
        for lead_id in lead_ids:
            await agent.put(
                key=lead_id.encode(), value=encoded(capture_command(lead_id, intent="demo_request"))
            )


async def test_a_won_deal_closes_the_loop_once_however_often_it_arrives(sent: Sent) -> None:
    await captured("lead-4")
    async with close_the_loop.test_context() as agent:
        for _ in range(3):
            await agent.put(key=b"lead-4", value=deal_closed("lead-4", Outcome.WON))
    lead = leads.get("lead-4")
    assert lead is not None
    assert (lead.status, lead.deal_id) == (LeadStatus.WON, "deal-lead-4")
    assert (lead.won_amount, lead.won_currency) == (Decimal("9000.00"), "EUR")
    assert sent.dead_letters == []


async def test_not_a_real_lead_recycles_it() -> None:
    await captured("lead-5")
    async with close_the_loop.test_context() as agent:
        await agent.put(key=b"lead-5", value=deal_closed("lead-5", Outcome.LOST, LostReason.NOT_A_REAL_LEAD))
    lead = leads.get("lead-5")
    assert lead is not None
    assert lead.status is LeadStatus.RECYCLED
    assert lead.lost_reason is LostReason.NOT_A_REAL_LEAD
    assert (lead.won_amount, lead.won_currency) == (None, None)


async def test_a_deal_of_a_lead_marketing_never_had_goes_to_the_dlq(sent: Sent) -> None:
    async with close_the_loop.test_context() as agent:
        await agent.put(key=b"ghost", value=deal_closed("ghost", Outcome.WON))
    [(message, error)] = sent.dead_letters
    assert message.key == b"ghost"
    assert "unknown lead" in str(error)
    assert leads.get("ghost") is None


async def test_from_captures_to_the_campaign_counts() -> None:
    """The leads the agents stored, summed, give the campaign's numbers."""
    await captured("lead-6", "lead-7")
    async with close_the_loop.test_context() as agent:
        await agent.put(key=b"lead-6", value=deal_closed("lead-6", Outcome.WON))
        await agent.put(key=b"lead-7", value=deal_closed("lead-7", Outcome.LOST, LostReason.NO_BUDGET))
        await agent.put(key=b"lead-6", value=deal_closed("lead-6", Outcome.WON))  # delivered again
    stored = [leads.get("lead-6"), leads.get("lead-7")]
    assert None not in stored
    counts = counts_over("expo", [lead for lead in stored if lead is not None])
    assert (counts.leads, counts.qualified, counts.deals_won, counts.deals_lost) == (2, 2, 1, 1)
    assert counts.revenue == {"EUR": Decimal("9000.00")}
    assert counts.updated_at == NOW


async def test_a_campaign_is_created_once_on_its_own_key(sent: Sent) -> None:
    command = CreateCampaign(
        campaign_id="expo-2",
        name="Expo 2026",
        channel=Channel.EVENT,
        budget=Budget(amount=Decimal("5000.00"), currency="EUR"),
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        target=Target(industries=["Software"]),
    )
    async with apply_commands.test_context() as agent:
        await agent.put(key=b"expo-2", value=command.model_dump_json().encode())
        first = campaigns.get("expo-2")
        await agent.put(key=b"expo-2", value=command.model_dump_json().encode())
    assert first is not None
    assert first.target.industries == ["software"]
    assert campaigns.get("expo-2") == first
    assert sent.dead_letters == []


def deal_updated(lead_id: str, stage: DealStage, previous: DealStage | None = None) -> bytes:
    data = DealUpdated(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id="expo",
        changes=[DealChange.STAGE_CHANGED, DealChange.FIRST_CONTACT] if previous else [DealChange.OPENED],
        stage=stage,
        previous_stage=previous,
        owner="rep-1",
        opened_at=NOW,
        stage_entered_at=NOW,
        first_contact_at=NOW if previous else None,
        follow_up_due_at=NOW + timedelta(hours=24),
        updated_at=NOW,
    )
    return new_event(data, source="/leadflow/sales", subject=lead_id).to_json()


def order_created(lead_id: str) -> bytes:
    line = OrderLine(
        sku="LF-CORE", name="Core", quantity=1, unit_price=Decimal("9000.00"), line_total=Decimal("9000.00")
    )
    data = OrderCreated(
        order_id=f"order-{lead_id}",
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        customer=Customer(company=Company(name="Acme"), contact=Contact(email="ana@acme.io", name="Ana")),
        lines=[line],
        total=Decimal("9000.00"),
        currency="EUR",
        created_at=NOW,
    )
    return new_event(data, source="/leadflow/orders", subject=lead_id).to_json()


def order_updated(lead_id: str, status: OrderStatus) -> bytes:
    data = OrderUpdated(
        order_id=f"order-{lead_id}",
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        status=status,
        previous_status=OrderStatus.CONFIRMED,
        total=Decimal("9000.00"),
        currency="EUR",
        updated_at=NOW,
    )
    return new_event(data, source="/leadflow/orders", subject=lead_id).to_json()


async def test_sales_and_orders_events_draw_the_lead_s_journey_into_the_funnel(sent: Sent) -> None:
    await captured("lead-7")
    async with (
        follow_orders.test_context() as agent
    ):  # the order first: topics do not keep order between them
        await agent.put(key=b"lead-7", value=order_created("lead-7"))
    async with follow_deals.test_context() as agent:
        for _ in range(2):
            await agent.put(
                key=b"lead-7", value=deal_updated("lead-7", DealStage.QUALIFYING, DealStage.PROSPECTING)
            )
        await agent.put(key=b"lead-7", value=deal_updated("lead-7", DealStage.PROSPECTING))
    async with close_the_loop.test_context() as agent:
        await agent.put(key=b"lead-7", value=deal_closed("lead-7", Outcome.WON))
    async with follow_order_updates.test_context() as agent:
        await agent.put(key=b"lead-7", value=order_updated("lead-7", OrderStatus.FULFILLED))
    lead = leads.get("lead-7")
    assert lead is not None
    assert lead.journey is not None
    assert lead.journey.stages == [DealStage.PROSPECTING, DealStage.QUALIFYING]
    assert (lead.journey.owner, lead.journey.first_contact_at, lead.journey.ordered_at) == ("rep-1", NOW, NOW)
    assert lead.status is LeadStatus.WON
    drawn = funnel_from(contribution(lead), NOW)  # what the worker's tally adds for it
    counts = {step.step: step.count for step in drawn.steps}
    assert (counts["deal_opened"], counts["contacted"], counts["won"], counts["ordered"]) == (1, 1, 1, 1)
    assert counts["fulfilled"] == 1
    assert drawn.handover.follow_up.met == 1
    assert sent.dead_letters == []


async def test_a_deal_announced_before_its_lead_was_stored_joins_the_lead_once_it_is(sent: Sent) -> None:
    # Marketing publishes lead.qualified before it stores the lead; after a crash in
    # between, sales can open the deal before the capture comes again.
    async with follow_deals.test_context() as agent:
        await agent.put(key=b"lead-9", value=deal_updated("lead-9", DealStage.PROSPECTING))
        await agent.put(
            key=b"lead-9", value=deal_updated("lead-9", DealStage.QUALIFYING, DealStage.PROSPECTING)
        )
    async with follow_orders.test_context() as agent:
        await agent.put(key=b"lead-9", value=order_created("lead-9"))
    assert leads.get("lead-9") is None
    await captured("lead-9")
    lead = leads.get("lead-9")
    assert lead is not None
    assert lead.journey is not None
    assert lead.journey.stages == [DealStage.PROSPECTING, DealStage.QUALIFYING]
    assert (lead.journey.owner, lead.journey.ordered_at) == ("rep-1", NOW)
    assert early_journeys.get("lead-9") is None
    assert sent.dead_letters == []
