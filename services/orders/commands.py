"""Orders' commands: HTTP writes, applied by the worker that owns the order."""

from typing import Literal

from services.orders.domain.orders import OrderStatus
from services.runtime.commands import Command


class ChangeStatus(Command):
    kind: Literal["change_status"] = "change_status"
    lead_id: str
    status: OrderStatus


OrdersCommand = ChangeStatus
