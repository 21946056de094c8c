"""The partition probe's keys land where claimed and its arithmetic of unserved
stretches is right; no broker needed."""

import pytest
from kafka.partitioner import DefaultPartitioner

from tests.chaos.faults import BROKER, KILL, TERM, Fault
from tests.chaos.probe import (
    WINDOW_S,
    Sample,
    assess,
    longest_gap,
    longest_unserved,
    probe_keys,
    unserved_stretches,
    window_end,
)


class Cluster:
    """Just enough of kafka-python's ClusterMetadata for its partitioner."""

    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"leads"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


@pytest.mark.parametrize("partitions", [1, 2, 6, 12, 24])
def test_one_key_per_partition_each_where_kafkas_partitioner_puts_it(partitions: int) -> None:
    keys = probe_keys(partitions)
    partitioner, cluster = DefaultPartitioner(), Cluster(partitions)

    assert len(keys) == len(set(keys)) == partitions
    assert all(key.startswith("probe-") for key in keys)
    for partition, key in enumerate(keys):
        assert partitioner.partition("leads", key, key.encode(), None, None, cluster) == partition


def test_the_keys_are_the_first_probe_ids_found_for_each_partition() -> None:
    keys = probe_keys(6)
    tried = max(int(k.removeprefix("probe-")) for k in keys)
    partitioner, cluster = DefaultPartitioner(), Cluster(6)
    first: dict[int, str] = {}
    for n in range(tried + 1):
        first.setdefault(
            partitioner.partition("leads", None, f"probe-{n}".encode(), None, None, cluster), f"probe-{n}"
        )
    assert keys == [first[p] for p in range(6)]


def timeline(pattern: str, start: float = 0.0, every: float = 0.25) -> list[Sample]:
    """Reads every `every` s from `start`: "s" served, "u" unserved."""
    return [(start + i * every, mark == "s") for i, mark in enumerate(pattern)]


def test_a_partition_always_served_was_never_unserved() -> None:
    assert longest_gap(timeline("ssssssss"), 0.0, 10.0) == 0.0


def test_the_longest_stretch_runs_from_the_first_unserved_read_to_the_next_served_one() -> None:
    # Unserved at 0.5-1.0 (0.5 s), then at 1.5-3.0 (1.5 s).
    reads = timeline("ssuussuuuuuussss")
    assert longest_gap(reads, 0.0, 10.0) == pytest.approx(1.5)
    # The window opens within the longer stretch: only its part inside counts.
    assert longest_gap(reads, 2.5, 10.0) == pytest.approx(0.5)
    # It closes within it: the part until then.
    assert longest_gap(reads, 0.0, 2.0) == pytest.approx(0.5)


def test_a_stretch_that_began_before_the_window_counts_from_the_window_on() -> None:
    # Unserved from 0.0 until served again at 5.0; the fault came at 2.0.
    reads = timeline("u" * 20 + "ssss")
    assert longest_gap(reads, 2.0, 60.0) == pytest.approx(3.0)
    # A stretch that ended before the window does not count at all.
    assert longest_gap(reads, 5.25, 60.0) == 0.0


def test_a_partition_never_served_was_unserved_the_whole_window() -> None:
    reads = timeline("u" * 400)  # 0 to 99.75 s
    assert longest_gap(reads, 10.0, 70.0) == pytest.approx(60.0)
    # The reads stopped inside the window: unserved as far as they saw, no further.
    assert longest_gap(reads, 90.0, 150.0) == pytest.approx(9.75)


def test_no_read_in_the_window_tells_nothing() -> None:
    assert longest_gap(timeline("uuuu"), 5.0, 10.0) is None
    assert longest_gap([], 0.0, 10.0) is None


def worst(
    samples: dict[str, list[list[Sample]]], services: list[str], start: float, end: float
) -> tuple[float, str] | None:
    found = longest_unserved(samples, services, start, end)
    return None if found is None else (round(found[0], 6), found[1])


def test_the_worst_partition_of_the_services_asked_about_is_named() -> None:
    samples = {
        "marketing": [timeline("ssuuussss"), timeline("ssssssss")],  # 0.75 s on marketing/0
        "sales": [timeline("sssssss"), timeline("suuuuuuuus")],  # 2.0 s on sales/1
        "orders": [timeline("u" * 40), timeline("s" * 40)],  # never served
    }
    assert worst(samples, ["marketing"], 0.0, 60.0) == (0.75, "marketing/0")
    assert worst(samples, ["marketing", "sales"], 0.0, 60.0) == (2.0, "sales/1")
    assert worst(samples, ["marketing", "sales", "orders"], 0.0, 60.0) == (9.75, "orders/0")
    assert worst(samples, ["sales"], 100.0, 160.0) is None


def fault(kind: str, target: str, at: float, **figures: float) -> Fault:
    return Fault(kind, target, at, under_load=True, **figures)  # type: ignore[arg-type]


def test_a_faults_window_ends_at_its_services_next_fault_or_after_a_minute() -> None:
    faults = [
        first := fault(TERM, "sales-0", 100.0),
        fault(KILL, "orders-1", 105.0),  # another service: does not end sales' window
        second := fault(TERM, "sales-1", 110.0),
        broker := fault(BROKER, "broker", 200.0),
        last := fault(KILL, "orders-0", 220.0),
    ]
    assert window_end(first, faults) == 110.0
    assert window_end(second, faults) == 110.0 + WINDOW_S
    assert window_end(broker, faults) == 220.0  # the broker's hits every service
    assert window_end(last, faults) == 220.0 + WINDOW_S


def test_each_fault_gets_the_longest_stretch_of_its_own_window() -> None:
    samples = {
        "marketing": [timeline("s" * 400), timeline("s" * 400)],
        # Unserved 10.0-13.0 s, then 20.0-21.0 s.
        "sales": [timeline("s" * 40 + "u" * 12 + "s" * 348), timeline("s" * 80 + "uuuu" + "s" * 316)],
        "orders": [timeline("s" * 400), timeline("s" * 400)],
    }
    faults = [
        kill := fault(KILL, "sales-0", 9.0),
        term := fault(TERM, "sales-1", 12.0),
        other := fault(KILL, "orders-0", 30.0),
    ]
    assess(faults, samples)

    # Until the next fault of sales (12.0): 2 s of the first stretch.
    assert kill.unserved_partition == "sales/0"
    assert kill.unserved_s == pytest.approx(2.0)
    # From its own start on: 1 s of the first stretch (the first found of two of 1 s).
    assert term.unserved_partition == "sales/0"
    assert term.unserved_s == pytest.approx(1.0)
    assert other.unserved_s == 0.0


def test_a_term_is_judged_on_unserved_a_kill_on_ready() -> None:
    assert not fault(TERM, "sales-0", 0.0, ready_s=30.0, unserved_s=4.0).missed_target
    assert fault(TERM, "sales-0", 0.0, ready_s=1.0, unserved_s=6.0).missed_target
    assert fault(TERM, "sales-0", 0.0, ready_s=1.0).missed_target  # the probe saw nothing
    assert fault(KILL, "sales-0", 0.0, ready_s=11.0, unserved_s=0.0).missed_target
    assert not fault(KILL, "sales-0", 0.0, ready_s=9.0, unserved_s=30.0).missed_target
    assert not fault(BROKER, "broker", 0.0, ready_s=9.0).missed_target


def test_stretches_run_from_the_first_unserved_read_to_the_next_served_or_the_last_read() -> None:
    assert unserved_stretches(timeline("suusssuu")) == [(0.25, 0.75), (1.5, 1.75)]
    assert unserved_stretches(timeline("ssss")) == []


def test_a_term_of_a_service_the_probe_cannot_read_is_judged_on_nothing_it_did_not_see() -> None:
    samples = {"sales": [timeline("s" * 40)]}
    webhooks, sales = fault(TERM, "webhooks-0", 1.0, ready_s=1.0), fault(TERM, "sales-0", 1.0, ready_s=1.0)
    assess([webhooks, sales], samples)
    # No keyed read of webhooks: no unserved figure, and no target missed for the want of one.
    assert webhooks.unserved_s is None
    assert not webhooks.missed_target
    # A probed service is judged as before.
    assert sales.unserved_s == 0.0
    assert not sales.missed_target
