"""Which partitions are read from the start after a rebalance."""

from faust.types import TP

from services.runtime.consumer import uncommitted_stream_partitions


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
