"""Orders' settings: LEADFLOW_* environment variables."""

from services.runtime.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    service: str = "orders"
    web_port: int = 8003
