"""Orders' business metrics. Labels are bounded sets (status, currency), never ids.

Counters and histograms count what this process did (Prometheus copes with the
reset when a worker restarts; sum them over workers). Orders by status is a gauge
kept as orders are written and rebuilt from the table after a rebalance (see
services/runtime/tallies.py), so a scrape reads no order, and it is right after a
restart and across workers: each reports only the partitions it is active for.
"""

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.orders.app import orders, runtime
from services.orders.domain.orders import Order, OrderStatus, deal_to_order_seconds
from services.runtime.tallies import Tally

ORDERS_CREATED = Counter("leadflow_orders_created", "Orders created from won deals.", ["currency"])
ORDER_VALUE = Histogram(
    "leadflow_orders_order_value_currency_units",
    "Total of each new order in units of its currency (label currency); never mix currencies.",
    ["currency"],
    buckets=(100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000),
)
DEAL_TO_ORDER = Histogram(
    "leadflow_orders_deal_to_order_seconds",
    "From a deal's close (closed_at) to the order made from it, by the orders worker's clock.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
STATUS_CHANGES = Counter(
    "leadflow_orders_status_changes", "Orders moved into a status after creation.", ["status"]
)


def order_created(order: Order, now: datetime) -> None:
    ORDERS_CREATED.labels(currency=order.currency).inc()
    # Metrics are floats by nature; the order itself keeps its Decimal.
    ORDER_VALUE.labels(currency=order.currency).observe(float(order.total))
    DEAL_TO_ORDER.observe(deal_to_order_seconds(order, now))


def _in_status() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "leadflow_orders_in_status",
        "Orders in each status, on the partitions this worker is active for (sum over workers).",
        labels=["status"],
    )


class OrdersInStatus(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registration asks for names only; the table may not even be recovered yet.
        yield _in_status()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = _in_status()
        counts = IN_STATUS.totals()
        for status in OrderStatus:
            gauge.add_metric([status.value], counts[status])
        yield gauge


# Kept as orders are written: a scrape does not read the orders table.
IN_STATUS = Tally(runtime.cluster, orders, lambda order: {order.status: 1})
REGISTRY.register(OrdersInStatus())
