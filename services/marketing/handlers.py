"""Marketing's use cases: each takes a command or event, changes tables through
the pure domain and publishes what the domain says happened."""

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from schemas.envelope import CloudEvent
from schemas.events import DealClosed, DealUpdated, OrderCreated, OrderUpdated
from services.marketing import metrics
from services.marketing.app import campaigns, early_journeys, leads, rules, runtime
from services.marketing.commands import CaptureLead, CreateCampaign, RecordActivity
from services.marketing.domain import capture as captures
from services.marketing.domain import journey as journeys
from services.marketing.domain import leads as lead_flow
from services.marketing.domain.activities import Activity
from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.capture import Capture, CaptureRefused
from services.marketing.domain.journey import Journey
from services.marketing.domain.leads import Change, Lead, LeadStatus
from services.runtime.errors import NotFound


def now() -> datetime:
    return datetime.now(UTC)


async def create_campaign(command: CreateCampaign) -> Campaign:
    existing = campaigns.get(command.campaign_id)
    if existing is not None:
        return existing  # a redelivered command
    campaign = Campaign(**command.model_dump(exclude={"command_id", "kind"}), created_at=now())
    campaigns[campaign.campaign_id] = campaign
    return campaign


def refuse_bad_capture(data: Capture, campaign: Campaign | None) -> None:
    """Raise CaptureRefused (422, every reason) for a capture the rules do not accept;
    `campaign` is the one it names, None if there is none by that id."""
    try:
        captures.check(data, campaign, rules)
    except CaptureRefused as refused:
        for problem in refused.problems:
            metrics.CAPTURES_REFUSED.labels(reason=problem.code).inc()
        raise


async def capture_lead(command: CaptureLead) -> Change:
    data = command.capture
    # The rules are checked again here (CaptureRefused), unless the command was applied already.
    change = lead_flow.capture(
        leads.get(command.lead_id), command.lead_id, data, command.campaign, rules, now(), command.command_id
    )
    await _apply(change)
    if change.replayed:
        return change
    if change.created is not None:
        metrics.LEADS_CAPTURED.labels(channel=data.channel, campaign_id=data.campaign_id or "none").inc()
    else:
        metrics.DUPLICATES.labels(channel=data.channel).inc()
    return change


async def record_activity(command: RecordActivity) -> Change:
    lead = leads.get(command.lead_id)
    if lead is None:
        raise NotFound(f"no lead {command.lead_id!r}")
    at = now()
    change = lead_flow.record_activity(
        lead,
        Activity(type=command.type, at=at, campaign_id=command.campaign_id),
        rules,
        at,
        command.command_id,
    )
    await _apply(change)
    return change


async def _apply(change: Change) -> None:
    """Publish what the change announces, then store the lead (unless replayed:
    then it only announces again, see domain/leads.py `replay`)."""
    lead = change.lead
    # Publish before storing: if the worker dies in between, the command is
    # delivered again and republishes rather than losing the event.
    if change.created is not None:
        await runtime.publisher.publish(
            change.created, subject=lead.lead_id, at=change.created.captured_at, once_per=lead.lead_id
        )
    if change.qualified is not None:
        await runtime.publisher.publish(
            change.qualified, subject=lead.lead_id, at=change.qualified.qualified_at, once_per=lead.lead_id
        )
    if change.replayed:
        return
    if change.created is not None and (early := early_journeys.get(lead.lead_id)) is not None:
        lead = lead.model_copy(update={"journey": early})
        del early_journeys[lead.lead_id]
    leads[lead.lead_id] = lead
    _count_decision(change)


def _count_decision(change: Change) -> None:
    lead = change.lead
    if not change.status_changed:
        return
    metrics.SCORE.labels(status=lead.status).observe(lead.score)
    if change.qualified is not None:
        metrics.QUALIFIED.labels(campaign_id=lead.campaign_id or "none").inc()
    if lead.status is LeadStatus.DISQUALIFIED:
        for reason in lead.disqualified_by:
            metrics.DISQUALIFIED.labels(reason=reason).inc()


async def handle(command: Any) -> Any:
    match command:
        case CreateCampaign():
            return await create_campaign(command)
        case CaptureLead():
            return await capture_lead(command)
        case RecordActivity():
            return await record_activity(command)
    raise TypeError(f"unknown command {command!r}")


async def on_deal_closed(event: CloudEvent[DealClosed]) -> None:
    deal = event.data
    lead: Lead | None = leads.get(deal.lead_id)
    if lead is None:
        raise NotFound(f"deal {deal.deal_id} closed for unknown lead {deal.lead_id}")
    change = lead_flow.close_loop(lead, deal)
    if change.replayed:
        return  # the same deal.closed again
    leads[lead.lead_id] = change.lead
    metrics.DEAL_OUTCOMES.labels(outcome=deal.outcome, lost_reason=deal.lost_reason or "none").inc()


def _follow(lead_id: str, step: Callable[[Journey | None], Journey]) -> None:
    """Take one step of a lead's journey; for a lead not stored yet, keep the journey
    until it is (app.early_journeys): an event is never dropped for coming early."""
    lead = leads.get(lead_id)
    if lead is None:
        early = early_journeys.get(lead_id)
        journey = step(early)
        if journey != early:
            early_journeys[lead_id] = journey
            metrics.EARLY_JOURNEY_EVENTS.inc()
        return
    followed = lead_flow.follow(lead, step(lead.journey))
    if followed is not None:
        leads[lead_id] = followed


async def on_deal_updated(event: CloudEvent[DealUpdated]) -> None:
    _follow(event.data.lead_id, partial(journeys.with_update, update=event.data))


async def on_order_created(event: CloudEvent[OrderCreated]) -> None:
    _follow(event.data.lead_id, partial(journeys.with_order, order=event.data))


async def on_order_updated(event: CloudEvent[OrderUpdated]) -> None:
    _follow(event.data.lead_id, partial(journeys.with_order_update, update=event.data))
