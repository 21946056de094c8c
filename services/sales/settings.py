"""Sales' settings: LEADFLOW_* environment variables."""

from pathlib import Path

from services.runtime.settings import ServiceSettings
from services.sales.domain.catalog import DEFAULT_CATALOG_FILE


class SalesSettings(ServiceSettings):
    service: str = "sales"
    web_port: int = 8002
    catalog_file: Path = DEFAULT_CATALOG_FILE
