"""Sales' settings: LEADFLOW_* environment variables."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from services.runtime.settings import ServiceSettings
from services.sales.domain.catalog import DEFAULT_CATALOG_FILE

DEFAULT_REPS_FILE = Path(__file__).resolve().parent / "config" / "reps.yaml"


class SalesSettings(ServiceSettings):
    service: str = "sales"
    web_port: int = 8002
    catalog_file: Path = DEFAULT_CATALOG_FILE
    # The sales team: reps, their territories and capacity.
    reps_file: Path = DEFAULT_REPS_FILE
    # A deal must have its first contact within this long of being opened.
    follow_up_sla_seconds: float = Field(default=24 * 3600, gt=0)
    # Tests only: POST /clock moves this worker's clock forward (SLA breaches
    # without waiting). Never on in production.
    clock_control: bool = False

    @property
    def follow_up_sla(self) -> timedelta:
        return timedelta(seconds=self.follow_up_sla_seconds)
