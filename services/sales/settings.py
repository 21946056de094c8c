"""Sales' settings: LEADFLOW_* environment variables."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field, field_validator

from services.runtime.settings import ServiceSettings
from services.sales.domain.catalog import DEFAULT_CATALOG_FILE
from services.sales.domain.deals import OPEN_STAGES, Stage
from services.sales.domain.forecast import DEFAULT_PLAN, StagePlan

DEFAULT_REPS_FILE = Path(__file__).resolve().parent / "config" / "reps.yaml"


class SalesSettings(ServiceSettings):
    service: str = "sales"
    web_port: int = 8002
    catalog_file: Path = DEFAULT_CATALOG_FILE
    # The sales team: reps, their territories and capacity.
    reps_file: Path = DEFAULT_REPS_FILE
    # A deal must have its first contact within this long of being opened.
    follow_up_sla_seconds: float = Field(default=24 * 3600, gt=0)
    # The forecast's assumptions per open stage: probability of a win, forecast
    # category, typical days from entering the stage to the close. JSON, e.g.
    # LEADFLOW_FORECAST_PLAN='{"closing": {"probability": "0.8", "category": "commit",
    # "days_to_close": 10}}'; stages left out keep their defaults.
    forecast_plan: dict[Stage, StagePlan] = Field(default_factory=lambda: dict(DEFAULT_PLAN))
    # Closed deals that must have reached a stage before their measured conversion
    # to won replaces the stage's configured probability.
    forecast_min_history: int = Field(default=20, ge=1)
    # Web origins whose pages may read this API from a browser (the funnel page on
    # marketing shows GET /forecast), e.g. '["http://127.0.0.1:8001"]'. Empty: none.
    cors_origins: list[str] = Field(default_factory=list)
    # Tests only: POST /clock moves this worker's clock forward (SLA breaches
    # without waiting). Never on in production.
    clock_control: bool = False

    @property
    def follow_up_sla(self) -> timedelta:
        return timedelta(seconds=self.follow_up_sla_seconds)

    @field_validator("forecast_plan")
    @classmethod
    def _every_open_stage(cls, plan: dict[Stage, StagePlan]) -> dict[Stage, StagePlan]:
        if closed := set(plan) - set(OPEN_STAGES):
            raise ValueError(f"only open stages have a forecast plan, not {sorted(closed)}")
        return {**DEFAULT_PLAN, **plan}
