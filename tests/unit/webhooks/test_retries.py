from datetime import timedelta

import pytest

from services.webhooks.domain.retries import RetryPolicy


def test_the_default_schedule_spans_more_than_a_day() -> None:
    policy = RetryPolicy()
    assert policy.span() >= timedelta(hours=24)
    assert policy.is_last(policy.attempts)
    assert not policy.is_last(policy.attempts - 1)


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(first_delay_seconds=10, factor=3, max_delay_seconds=100, jitter=0)
    assert [policy.delay_after(n, 0.5).total_seconds() for n in range(1, 6)] == [10, 30, 90, 100, 100]


@pytest.mark.parametrize("draw", [0.0, 0.3, 0.999])
def test_jitter_only_adds_and_at_most_its_share(draw: float) -> None:
    policy = RetryPolicy(first_delay_seconds=10, factor=2, jitter=0.2)
    delay = policy.delay_after(3, draw).total_seconds()
    assert 40 <= delay < 48
    assert delay == pytest.approx(40 * (1 + 0.2 * draw))
