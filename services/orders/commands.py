"""Orders' commands: HTTP writes, applied by the worker that owns the order."""

from typing import Literal

from services.orders.domain.orders import OrderStatus
from services.runtime.commands import LeadCommand


class ChangeStatus(LeadCommand):
    kind: Literal["change_status"] = "change_status"
    status: OrderStatus


OrdersCommand = ChangeStatus
