"""Money on the wire: a decimal string and an ISO 4217 currency, never a float."""

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

AMOUNT_PATTERN = r"^-?\d+(\.\d+)?$"


def _no_floats(value: Any) -> Any:
    # A float has already lost precision by the time it gets here.
    if isinstance(value, float):
        raise ValueError("money must be a decimal string such as '1250.00', not a float")
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("money must be a finite decimal")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_no_floats),
    AfterValidator(_finite),
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["1250.00"]}),
]

Currency = Annotated[
    str,
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"}),
    AfterValidator(lambda c: _currency(c)),
]


def _currency(code: str) -> str:
    if len(code) != 3 or not code.isascii() or not code.isalpha() or not code.isupper():
        raise ValueError("currency must be an ISO 4217 code such as 'EUR'")
    return code


def _percent(value: Decimal) -> Decimal:
    if not 0 <= value <= 100:
        raise ValueError("a percentage is between 0 and 100")
    return value


# A discount as a decimal string, like money: '12.5' means 12.5 %.
Percent = Annotated[
    Decimal,
    BeforeValidator(_no_floats),
    AfterValidator(_finite),
    AfterValidator(_percent),
    PlainSerializer(lambda d: format(d, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?$", "examples": ["12.5"]}),
]
