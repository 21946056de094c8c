"""Webhooks' metrics. Labels are bounded sets (event type, outcome, status), never ids
or URLs.

Attempts and deliveries count what this process did (sum over workers). Pending
deliveries are a tally over the partitions this worker is active for (sum over
workers). Subscriptions by status are read from the copy every worker holds:
every worker reports all of them, so take the max over workers, not the sum.
"""

import collections
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.runtime.tallies import Contribution, Tally
from services.webhooks.app import deliveries, replica, runtime
from services.webhooks.domain.deliveries import Attempt, LeadDeliveries, Verdict
from services.webhooks.domain.subscriptions import SubscriptionStatus

ATTEMPTS = Counter(
    "leadflow_webhooks_attempts",
    "HTTP attempts at deliveries, by event type and result (2xx, 3xx, 4xx, 5xx, or error: no answer).",
    ["event_type", "result"],
)
ATTEMPT_SECONDS = Histogram(
    "leadflow_webhooks_attempt_seconds",
    "How long an attempt took, from the request to the answer or the failure.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERIES = Counter(
    "leadflow_webhooks_deliveries",
    "Attempt outcomes as applied to deliveries: delivered, retry (scheduled again), dead "
    "(out of attempts), gone (the receiver answered 410).",
    ["outcome"],
)
RECORDED = Counter(
    "leadflow_webhooks_recorded",
    "Deliveries queued for subscriptions, by event type (replays counted as such).",
    ["event_type", "replay"],
)


def attempted(event_type: str, attempt: Attempt) -> None:
    result = "error" if attempt.status_code is None else f"{attempt.status_code // 100}xx"
    ATTEMPTS.labels(event_type=event_type, result=result).inc()
    ATTEMPT_SECONDS.observe(attempt.seconds)


def settled(verdict: Verdict) -> None:
    if verdict is not Verdict.STALE:
        DELIVERIES.labels(outcome=verdict.value).inc()


def _pending(entry: LeadDeliveries) -> Contribution:
    return {"pending": sum(1 for queue in entry.queues.values() for d in queue if d.pending)}


PENDING = Tally(runtime.cluster, deliveries, _pending)


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily(
            "leadflow_webhooks_pending_deliveries",
            "Deliveries not settled yet, on the partitions this worker is active for (sum over workers).",
        ),
        GaugeMetricFamily(
            "leadflow_webhooks_subscriptions",
            "Subscriptions in each status; every worker reports all of them (max over workers).",
            labels=["status"],
        ),
    )


class WebhooksGauges(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending, subscriptions = _families()
        app = runtime.app
        if app.consumer is not None and not app.rebalancing:
            pending.add_metric([], PENDING.totals()["pending"])
        yield pending
        counts = collections.Counter(s.status for s in replica.all())
        for status in SubscriptionStatus:
            subscriptions.add_metric([status.value], counts[status])
        yield subscriptions


REGISTRY.register(WebhooksGauges())
