"""The time a service reads: UTC now, which a test may move forward.

Services ask a `Clock` rather than `datetime.now` so that a test against real
worker processes can let time pass (a follow-up SLA running out) without
waiting for it. Only a service that chooses to expose `advance` (behind a
setting that is off by default) lets anyone move it; otherwise it is the wall
clock. It never goes back, so timestamps a service records stay in order.
"""

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by `by`; return the new now."""
        if by < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._offset += by
        return self.now()
