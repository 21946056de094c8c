"""How a refused request is answered and documented: one body for every 4xx and
503, so clients (and the OpenAPI fuzz test) know every status a route gives."""

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field

# What every service's routes may answer, whatever their domain.
COMMON = {
    400: "The body is not JSON",
    401: "No bearer token, or one that is not valid (expired, another issuer or audience...)",
    403: "The token lacks the scope this operation needs",
    413: "The body is larger than the service accepts",
    503: "Rebalancing, or the command was not applied in time: retry after `Retry-After`",
}


class Problem(BaseModel):
    msg: str
    type: str
    loc: list[str | int] | None = Field(default=None, description="The field at fault, if one is")


class Refusal(BaseModel):
    """The body of a refused request (4xx) or of one to retry (503)."""

    detail: list[Problem] | str = Field(description="The problems; a string when the body is not JSON")


def documented(reasons: Mapping[int, str]) -> Callable[..., dict[int | str, dict[str, Any]]]:
    """`responses=` for routes, from a service's own reasons and the common ones."""
    every = {**COMMON, **reasons}

    def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
        return {status: {"model": Refusal, "description": every[status]} for status in statuses}

    return refusals
