"""Refusals a domain raises; the web layer maps each kind to its HTTP status.

Plain exceptions with no dependencies, so pure domain modules can raise them.
"""


class DomainError(Exception):
    """The domain refuses a request. `field` names the input at fault, if one is."""

    status = 400

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def to_body(self) -> dict[str, object]:
        detail: dict[str, object] = {"msg": self.reason, "type": type(self).__name__}
        if self.field:
            detail["loc"] = ["body", self.field]
        return {"detail": [detail]}


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """The request does not fit the current state (an impossible move, a second close)."""

    status = 409


class Unprocessable(DomainError):
    """Well-formed input the domain cannot accept (an unknown sku, an unknown campaign)."""

    status = 422
