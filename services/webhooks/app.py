"""The webhooks worker: its Faust app, web API and tables."""

from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable
from services.webhooks.domain.deliveries import LeadDeliveries
from services.webhooks.domain.subscriptions import Subscription
from services.webhooks.replica import SubscriptionsReplica
from services.webhooks.settings import WebhooksSettings

settings = WebhooksSettings()

runtime = ServiceRuntime(
    settings,
    title="Leadflow webhooks",
    description="Signed deliveries of Leadflow's events to subscribers' URLs, with retries, "
    "a delivery log and replay.",
)
app = runtime.app

# Keyed by subscription id; written by the worker owning that key (commands). Every
# worker also holds a copy of all of them, read from this table's changelog
# (replica.py): a Faust GlobalTable does not reliably follow another worker's writes.
subscriptions = ModelTable(app, "subscriptions", Subscription, help="Subscriptions by subscription_id")

# Keyed by lead_id, like the topics: each lead's deliveries to every subscription
# it matched live on its partition, so recording them is part of handling the
# event, and the lead's order is kept by one worker.
deliveries = ModelTable(app, "deliveries", LeadDeliveries, help="Deliveries and their log by lead_id")

# Every subscription, on every worker (see replica.py).
replica = SubscriptionsReplica()
runtime.ready_when["subscriptions_read"] = replica.caught_up.is_set
