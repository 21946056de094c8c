"""Faust's Prometheus sensor, with each labelled child looked up once.

`PrometheusMonitor` calls `labels()` on every record in, every stream event,
every table read and write and every send, and normalises the stream's name with
a regex on every event. prometheus_client checks and locks on each `labels()`
call: a profile of the orders hop put that at a twentieth of the worker's time.
The child for given labels never changes, so it is looked up once and kept. The
metrics, their names and labels are Faust's own, unchanged.
"""

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import PrometheusMonitor
from faust.types import TP, CollectionT, EventT, Message, PendingMessage, ProducerT, StreamT


class Children:
    """Labelled children of metrics, made on first use and kept (labels are bounded:
    topics, partitions, streams, tables)."""

    def __init__(self) -> None:
        self._made: dict[tuple[Any, ...], Any] = {}

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        child = self._made.get(key)
        if child is None:
            child = self._made[key] = make()
        return child


class LeadflowMonitor(PrometheusMonitor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._labelled = Children()
        self._stream_children: WeakKeyDictionary[StreamT[Any], Any] = WeakKeyDictionary()

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        self._labelled.get(
            ("in", tp.topic), lambda: metrics.messages_received_per_topics.labels(topic=tp.topic)
        ).inc()
        self._labelled.get(
            ("offset", tp),
            lambda: metrics.messages_received_per_topics_partition.labels(
                topic=tp.topic, partition=tp.partition
            ),
        ).set(offset)

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[Any, Any] | None:
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        child = self._stream_children.get(stream)
        if child is None:
            # Keyed weakly, as Faust's own lookups of streams are: a stream may go.
            label = f"stream.{self._stream_label(stream)}.events"
            child = self._stream_children[stream] = metrics.total_events_per_stream.labels(stream=label)
        child.inc()
        return state

    def on_table_get(self, table: CollectionT, key: Any) -> None:
        Monitor.on_table_get(self, table, key)
        self._table_operation(table, self.KEYS_RETRIEVED)

    def on_table_set(self, table: CollectionT, key: Any, value: Any) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._table_operation(table, self.KEYS_UPDATED)

    def _table_operation(self, table: CollectionT, operation: str) -> None:
        metrics = self._metrics
        self._labelled.get(
            ("table", table.name, operation),
            lambda: metrics.table_operations.labels(table=f"table.{table.name}", operation=operation),
        ).inc()

    def on_send_initiated(
        self, producer: ProducerT, topic: str, message: PendingMessage, keysize: int, valsize: int
    ) -> Any:
        metrics = self._metrics
        self._labelled.get(
            ("sent", topic), lambda: metrics.topic_messages_sent.labels(topic=f"topic.{topic}")
        ).inc()
        return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)
