"""Orders' commands: HTTP writes, applied by the worker that owns the order."""

from typing import Literal

from services.runtime.commands import Command

from services.orders.domain.orders import OrderStatus


class ChangeStatus(Command):
    kind: Literal["change_status"] = "change_status"
    lead_id: str
    status: OrderStatus


OrdersCommand = ChangeStatus
