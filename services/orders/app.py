"""The orders worker: its Faust app, web API and tables."""

from services.orders.domain.orders import Order
from services.orders.settings import OrdersSettings
from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable

settings = OrdersSettings()

runtime = ServiceRuntime(
    settings,
    title="Leadflow orders",
    description="Orders made from won deals, and their lifecycle.",
)
app = runtime.app

# Keyed by lead_id, like every topic: one won deal per lead, one order per won deal.
orders = ModelTable(app, "orders", Order, help="Orders by lead_id")
