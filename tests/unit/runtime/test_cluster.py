"""Who answers for a key, and when nobody should."""

from types import SimpleNamespace
from typing import Any

import pytest
from yarl import URL

from services.runtime.cluster import Cluster, Unavailable


class _Table:
    name = "orders"


def cluster(*, rebalancing: bool, stopping: bool = False) -> Cluster:
    router = SimpleNamespace(key_store=lambda table, key: URL("http://127.0.0.1:8003"))
    app: Any = SimpleNamespace(rebalancing=rebalancing, should_stop=stopping, router=router)
    return Cluster(app, "http://127.0.0.1:8003", forward_timeout=1.0)


def test_a_worker_answers_for_its_own_keys() -> None:
    assert cluster(rebalancing=False).owns(_Table(), "lead-1")  # type: ignore[arg-type]


def test_nobody_answers_while_partitions_move() -> None:
    # A table being recovered would answer "not found" for keys it will hold.
    with pytest.raises(Unavailable):
        cluster(rebalancing=True).owns(_Table(), "lead-1")  # type: ignore[arg-type]


def test_a_stopping_worker_answers_for_nothing() -> None:
    # SIGTERM: its HTTP server finishes what it has, but its partitions are leaving.
    with pytest.raises(Unavailable, match="stopping"):
        cluster(rebalancing=False, stopping=True).owns(_Table(), "lead-1")  # type: ignore[arg-type]


def with_partitions(count: int) -> Cluster:
    app: Any = SimpleNamespace(conf=SimpleNamespace(topic_partitions=count))
    return Cluster(app, "http://127.0.0.1:8003", forward_timeout=1.0)


def test_workers_answers_add_up_when_they_hold_every_partition_once() -> None:
    with_partitions(4).whole(_Table(), [[0, 2], [1, 3]])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shares", "reason"),
    [
        ([[0, 2], [1]], r"missing \[3\]"),  # a worker not yet restored, or not asked
        ([[0, 1, 2], [2, 3]], r"twice \[2\]"),  # a zombie still answering for a moved partition
    ],
)
def test_workers_that_disagree_on_who_holds_what_give_no_sum(shares: list[list[int]], reason: str) -> None:
    with pytest.raises(Unavailable, match=reason):
        with_partitions(4).whole(_Table(), shares)  # type: ignore[arg-type]
