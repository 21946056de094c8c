"""Webhooks' agents: one per public topic recording deliveries, one applying commands;
a task following the subscriptions, a timer sending what is due."""

from typing import Any

from schemas import topics
from schemas.events import DealClosed, DealUpdated, LeadCreated, LeadQualified, OrderCreated, OrderUpdated
from services.runtime.events import consume
from services.webhooks import handlers
from services.webhooks.app import app, deliveries, replica, runtime, settings, subscriptions
from services.webhooks.dispatch import Dispatcher
from services.webhooks.topics import commands, events

dispatcher = Dispatcher(settings, runtime.cluster, deliveries, replica, commands)


@app.agent(events[topics.LEAD_CREATED])
async def deliver_lead_created(stream: Any) -> None:
    await consume(stream, LeadCreated, handlers.on_event, runtime.dead_letters)


@app.agent(events[topics.LEAD_QUALIFIED])
async def deliver_lead_qualified(stream: Any) -> None:
    await consume(stream, LeadQualified, handlers.on_event, runtime.dead_letters)


@app.agent(events[topics.DEAL_UPDATED])
async def deliver_deal_updated(stream: Any) -> None:
    await consume(stream, DealUpdated, handlers.on_event, runtime.dead_letters)


@app.agent(events[topics.DEAL_CLOSED])
async def deliver_deal_closed(stream: Any) -> None:
    await consume(stream, DealClosed, handlers.on_event, runtime.dead_letters)


@app.agent(events[topics.ORDER_CREATED])
async def deliver_order_created(stream: Any) -> None:
    await consume(stream, OrderCreated, handlers.on_event, runtime.dead_letters)


@app.agent(events[topics.ORDER_UPDATED])
async def deliver_order_updated(stream: Any) -> None:
    await consume(stream, OrderUpdated, handlers.on_event, runtime.dead_letters)


@app.agent(commands.topic)
async def apply_commands(stream: Any) -> None:
    await commands.serve(stream, handlers.handle)


@app.task  # type: ignore[untyped-decorator]
async def follow_subscriptions() -> None:
    await replica.follow(settings, subscriptions.changelog_topic)


@app.timer(settings.dispatch_interval_seconds)  # type: ignore[untyped-decorator]
async def send_due_deliveries() -> None:
    await dispatcher.tick(handlers.now())
