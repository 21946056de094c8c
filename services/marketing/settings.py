"""Marketing's settings: LEADFLOW_* environment variables."""

from pathlib import Path

from services.marketing.domain.rules import DEFAULT_RULES_FILE
from services.runtime.settings import ServiceSettings


class MarketingSettings(ServiceSettings):
    service: str = "marketing"
    web_port: int = 8001
    # Replace the qualification rules without a code change.
    rules_file: Path = DEFAULT_RULES_FILE
    # Sales' GET /forecast as the funnel page's browser reaches it (sales must allow
    # the page's origin, LEADFLOW_CORS_ORIGINS there); unset: the page shows none.
    forecast_url: str | None = None
