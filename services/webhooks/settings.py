"""Webhooks' settings: LEADFLOW_* environment variables."""

from pydantic import Field

from services.runtime.settings import ServiceSettings
from services.webhooks.domain.retries import RetryPolicy


class WebhooksSettings(ServiceSettings):
    service: str = "webhooks"
    web_port: int = 8004

    # Targets on loopback, link-local or private addresses (the tests' receivers on
    # 127.0.0.1), and plain http: both refused unless allowed.
    allow_private_targets: bool = False
    allow_http_targets: bool = False

    # Each attempt, the verification of a new URL included, gets this long to answer.
    attempt_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    retry_attempts: int = Field(default=12, ge=1, le=100)
    retry_first_delay_seconds: float = Field(default=10.0, gt=0)
    retry_factor: float = Field(default=3.0, ge=1.0)
    retry_max_delay_seconds: float = Field(default=6 * 3600.0, gt=0)
    retry_jitter: float = Field(default=0.2, ge=0, le=1)
    # Dead deliveries in a row after which a subscription is paused.
    pause_after_dead_deliveries: int = Field(default=5, ge=1)
    # How long the old secret keeps signing after a rotation, unless the request says.
    secret_overlap_seconds: float = Field(default=24 * 3600.0, ge=0)

    # How often the worker looks for deliveries that are due.
    dispatch_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    # Requests in flight at once, in all and to one subscription: a slow receiver
    # fills its own share, never the others'.
    max_in_flight: int = Field(default=64, ge=1)
    max_in_flight_per_subscription: int = Field(default=8, ge=1)
    # Most events one replay request may queue.
    replay_limit: int = Field(default=10_000, ge=1)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts,
            first_delay_seconds=self.retry_first_delay_seconds,
            factor=self.retry_factor,
            max_delay_seconds=self.retry_max_delay_seconds,
            jitter=self.retry_jitter,
        )
