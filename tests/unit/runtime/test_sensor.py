"""The cached sensor reports exactly what Faust's own Prometheus sensor does."""

from types import SimpleNamespace
from typing import Any

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from services.runtime.sensor import LeadflowMonitor


class Agent:
    def __init__(self, label: str) -> None:
        self.label = label

    def __str__(self) -> str:
        return f"Agent: {self.label}"


class Stream:
    def __init__(self, label: str) -> None:
        self.shortlabel = f"Stream: {label}"
        self.task_owner = Agent(label)

    def __str__(self) -> str:
        return self.shortlabel


def exposition(monitor_type: type[PrometheusMonitor]) -> list[str]:
    registry = CollectorRegistry()
    monitor = monitor_type(metrics=FaustMetrics.create(registry, "test"))
    streams = [Stream("orders.agents.make_orders"), Stream("orders.agents.apply_commands")]
    table: Any = SimpleNamespace(name="orders")
    other: Any = SimpleNamespace(name="orders-by-deal")
    message: Any = SimpleNamespace(time_in=None)
    for offset in range(7):
        tp = TP("deal.closed", offset % 3)
        stream: Any = streams[offset % 2]
        monitor.on_message_in(tp, offset, message)
        event: Any = SimpleNamespace()
        monitor.on_stream_event_in(tp, offset, stream, event)
        monitor.on_table_get(table if offset % 2 else other, b"key")
        monitor.on_table_set(table, b"key", b"value")
        monitor.on_send_initiated(None, "order.created" if offset % 3 else "deal.closed", None, 3, 10)  # type: ignore[arg-type]
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if not line.startswith("#") and "_created" not in line  # creation times differ
    ]


def test_reports_what_faust_sensor_reports() -> None:
    ours = exposition(LeadflowMonitor)
    assert ours == exposition(PrometheusMonitor)
    assert 'test_messages_received_per_topic_total{topic="deal.closed"} 7.0' in ours
    assert 'test_topic_messages_sent_total{topic="topic.order.created"} 4.0' in ours
    assert 'test_table_operations_total{operation="keys_retrieved",table="table.orders"} 3.0' in ours
