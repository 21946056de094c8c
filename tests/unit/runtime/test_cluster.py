"""Who answers for a key, and when nobody should."""

from types import SimpleNamespace
from typing import Any

import pytest
from yarl import URL

from services.runtime.cluster import Cluster, Unavailable


class _Table:
    name = "orders"


def cluster(*, rebalancing: bool) -> Cluster:
    router = SimpleNamespace(key_store=lambda table, key: URL("http://127.0.0.1:8003"))
    app: Any = SimpleNamespace(rebalancing=rebalancing, router=router)
    return Cluster(app, "http://127.0.0.1:8003", forward_timeout=1.0)


def test_a_worker_answers_for_its_own_keys() -> None:
    assert cluster(rebalancing=False).owns(_Table(), "lead-1")  # type: ignore[arg-type]


def test_nobody_answers_while_partitions_move() -> None:
    # A table being recovered would answer "not found" for keys it will hold.
    with pytest.raises(Unavailable):
        cluster(rebalancing=True).owns(_Table(), "lead-1")  # type: ignore[arg-type]
