"""Orders' HTTP request and response bodies."""

from pydantic import BaseModel, ConfigDict

from services.orders.domain.orders import OrderStatus


class StatusRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus
