"""Streams stop handling records just after the worker woke from a long stall.

A worker frozen past its session (SIGSTOP in the chaos suite) wakes up still
holding partitions another worker owns by now; in the half second before its
rebalance, it handled queued records and wrote stale values over the new owner's.
"""

import pytest

from services.runtime import consumer as consumer_module
from tests.unit.runtime.test_consumer_offsets import Harness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("services.runtime.consumer.time.monotonic", clock)
    return clock


def _flow(monkeypatch: pytest.MonkeyPatch) -> consumer_module._FlowControl:
    flow = Harness(monkeypatch, committed=0).app.flow_control
    assert isinstance(flow, consumer_module._FlowControl)
    return flow


def test_the_gate_follows_the_session_and_heartbeat_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    flow = _flow(monkeypatch)
    # Faust's defaults in the harness: a 60 s session, heartbeats every 3 s.
    assert flow.stall_limit == pytest.approx(57.0)
    assert flow.stall_hold == pytest.approx(6.0)


def test_after_a_stall_streams_wait_for_a_rebalance(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    flow = _flow(monkeypatch)
    flow.stall_limit, flow.stall_hold = 7.0, 6.0
    flow.resume()
    clock.now += 0.5
    flow.beat()
    assert flow.is_active()

    clock.now += 20.0  # frozen for 20 s; the stream asks before the beat runs
    assert not flow.is_active()
    flow.beat()
    assert not flow.is_active()
    clock.now += 0.4
    assert not flow.is_active()

    flow.suspend()  # the group took the partitions away...
    clock.now += 1.0
    flow.resume()  # ...and the rebalance ended: what is held now is ours
    assert flow.is_active()


def test_a_stall_the_group_did_not_notice_holds_only_a_few_heartbeats(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    flow = _flow(monkeypatch)
    flow.stall_limit, flow.stall_hold = 7.0, 6.0
    flow.resume()
    clock.now += 8.0
    flow.beat()  # the loop's own beat is first to see it
    assert not flow.is_active()
    clock.now += 5.9
    assert not flow.is_active()
    clock.now += 0.2
    assert flow.is_active()


def test_pauses_shorter_than_the_limit_change_nothing(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    flow = _flow(monkeypatch)
    flow.stall_limit, flow.stall_hold = 7.0, 6.0
    flow.resume()
    for _ in range(5):
        clock.now += 6.5
        assert flow.is_active()
        flow.beat()


def test_a_slow_start_is_no_stall(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    flow = _flow(monkeypatch)
    flow.stall_limit, flow.stall_hold = 7.0, 6.0
    clock.now += 30.0  # recovery took long, before any beat
    flow.resume()
    assert flow.is_active()
