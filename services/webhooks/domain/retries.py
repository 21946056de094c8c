"""When a failed delivery is tried again: exponential backoff with jitter.

The n-th retry waits `first_delay * factor**(n-1)`, at most `max_delay`, plus up to
`jitter` of that again at random, so receivers that come back do not get every
held delivery at once. Jitter only ever adds, so the schedule spans at least its
nominal length: with the defaults, 12 attempts over about 27 hours.
"""

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=12, ge=1, le=100)
    first_delay_seconds: float = Field(default=10.0, gt=0)
    factor: float = Field(default=3.0, ge=1.0)
    max_delay_seconds: float = Field(default=6 * 3600.0, gt=0)
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)

    def nominal_delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number `attempt` (1-based), before jitter."""
        seconds = min(self.max_delay_seconds, self.first_delay_seconds * self.factor ** (attempt - 1))
        return timedelta(seconds=seconds)

    def delay_after(self, attempt: int, draw: float) -> timedelta:
        """The wait after failed attempt `attempt`; `draw` in [0, 1) is the random part."""
        return self.nominal_delay(attempt) * (1 + self.jitter * draw)

    def is_last(self, attempt: int) -> bool:
        return attempt >= self.attempts

    def span(self) -> timedelta:
        """The least time from the first attempt to the last."""
        return sum((self.nominal_delay(n) for n in range(1, self.attempts)), timedelta(0))
