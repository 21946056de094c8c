"""The fault plan is reproducible from its seed and has what was asked for."""

import random
from collections import Counter

from tests.chaos.faults import BROKER, KILL, RECEIVER, TERM, WINDOW, ZOMBIE, plan


def test_a_seed_gives_the_same_faults_at_the_same_moments() -> None:
    def planned(seed: int) -> list[object]:
        return list(plan(random.Random(seed), duration=100, kills=3, broker=True, zombie=True, rolling=True))

    assert planned(7) == planned(7)
    assert planned(7) != planned(8)


def test_every_fault_asked_for_falls_inside_the_load() -> None:
    schedule = plan(random.Random(1), duration=200, kills=2, broker=True, zombie=False, rolling=True)
    kinds = Counter((p.kind, p.service) for p in schedule)
    assert kinds[(KILL, "sales")] == 2
    assert kinds[(TERM, "orders")] == 1
    assert kinds[(BROKER, None)] == 1
    assert (ZOMBIE, None) not in kinds
    assert all(WINDOW[0] * 200 <= p.at <= WINDOW[1] * 200 for p in schedule)
    assert [p.at for p in schedule] == sorted(p.at for p in schedule)


def test_a_receiver_outage_is_planned_once_when_asked_for() -> None:
    def outages(receiver: bool) -> int:
        schedule = plan(
            random.Random(3),
            duration=100,
            kills=1,
            broker=False,
            zombie=False,
            rolling=False,
            receiver=receiver,
        )
        return sum(1 for p in schedule if p.kind == RECEIVER)

    assert outages(True) == 1
    assert outages(False) == 0
