"""How the worker's consumer reads: which partitions start over after a rebalance, how long a fetch waits."""

from typing import Any, cast

import aiokafka
import pytest
from faust.types import TP
from pydantic import ValidationError

from services.runtime.consumer import uncommitted_stream_partitions
from services.runtime.service import ServiceRuntime
from services.runtime.settings import ServiceSettings


def test_stream_partitions_without_a_committed_offset_start_over() -> None:
    committed = {
        TP("deal.closed", 0): None,
        TP("deal.closed", 1): 0,
        TP("deal.closed", 2): 17,
        TP("leadflow-orders-orders-changelog", 0): None,
    }
    fresh = uncommitted_stream_partitions(
        committed, changelogs={"leadflow-orders-orders-changelog"}, reset="earliest"
    )
    assert fresh == [TP("deal.closed", 0), TP("deal.closed", 1)]


def test_nothing_moves_when_the_group_is_meant_to_start_at_the_end() -> None:
    committed = {TP("deal.closed", 0): None}
    assert uncommitted_stream_partitions(committed, changelogs=set(), reset="latest") == []


async def test_the_worker_consumer_holds_an_empty_fetch_only_as_long_as_configured() -> None:
    # Faust fixes 1,500 ms, and a restarted worker's offset lookups queue behind an
    # empty fetch on the broker's connection: 1.5 s per step of its recovery.
    runtime = ServiceRuntime(
        ServiceSettings(service="orders", web_port=8009, fetch_max_wait_ms=120),
        title="orders",
        description="",
    )
    thread = cast(Any, runtime.app.consumer)._thread
    consumer = thread._create_worker_consumer(runtime.app.transport)
    assert consumer._fetch_max_wait_ms == 120
    # The attribute is the one aiokafka's constructor sets and hands to its fetcher on start.
    assert aiokafka.AIOKafkaConsumer(fetch_max_wait_ms=7)._fetch_max_wait_ms == 7


def test_a_fetch_wait_longer_than_fausts_own_is_refused() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(service="orders", web_port=8009, fetch_max_wait_ms=5000)
