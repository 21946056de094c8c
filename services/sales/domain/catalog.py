"""The product catalogue: sales can only sell what it holds, at its prices.

A rep may negotiate a discount, but only an explicit one (a percentage per line)
and only up to the catalogue's `max_discount_percent`: the price list and how far
it may bend are versioned together in one file.
"""

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from schemas.events import DealLine
from schemas.money import Amount, Currency
from services.runtime.errors import Unprocessable

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

Percent = Decimal


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    name: str
    unit_price: Amount
    currency: Currency
    active: bool = True


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    currency: Currency
    max_discount_percent: Percent = Field(default=Decimal(0), ge=0, le=100)
    products: list[Product]

    def product(self, sku: str) -> Product | None:
        return next((p for p in self.products if p.sku == sku), None)

    @classmethod
    def load(cls, path: Path) -> "Catalog":
        catalog = cls.model_validate(yaml.safe_load(path.read_text()))
        mixed = [p.sku for p in catalog.products if p.currency != catalog.currency]
        if mixed:
            raise ValueError(f"catalogue {path}: {mixed} not priced in {catalog.currency}")
        skus = [p.sku for p in catalog.products]
        if len(set(skus)) != len(skus):
            raise ValueError(f"catalogue {path}: a sku is listed twice")
        return catalog


class OrderedLine(BaseModel):
    """What a rep asks for: a sku, a quantity and any negotiated discount; the
    price is the catalogue's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=100_000)
    discount_percent: Percent = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        decimal_places=2,
        description="Negotiated discount off the list price, at most the catalogue's max_discount_percent",
    )


class PricedLine(BaseModel):
    """A line as sold: list price, discount, and the net unit price the customer pays."""

    model_config = ConfigDict(frozen=True)

    sku: str
    name: str
    quantity: int
    list_price: Amount
    discount_percent: Percent
    unit_price: Amount = Field(description="Net of the discount, rounded to the cent")
    line_total: Amount

    def as_event_line(self) -> DealLine:
        # The net unit price makes the lines add up to the deal's amount; the list
        # price and discount say how it came about.
        return DealLine(
            sku=self.sku,
            name=self.name,
            quantity=self.quantity,
            unit_price=self.unit_price,
            list_price=self.list_price,
            discount_percent=self.discount_percent,
        )


class Quote(BaseModel):
    """Lines priced from one catalogue version."""

    model_config = ConfigDict(frozen=True)

    lines: list[PricedLine]
    list_amount: Amount
    discount_amount: Amount
    amount: Amount
    currency: Currency
    catalog_version: str


def net_unit_price(list_price: Decimal, discount_percent: Decimal) -> Decimal:
    return (list_price * (HUNDRED - discount_percent) / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def quote(lines: list[OrderedLine], catalog: Catalog, *, field: str = "lines") -> Quote:
    """Price `lines` from the catalogue; refuses no lines, unknown or inactive skus
    and discounts above the catalogue's cap, naming the field at fault (`field`:
    what the request calls the lines)."""
    if not lines:
        raise Unprocessable("at least one line is needed", field=field)
    priced = []
    for index, line in enumerate(lines):
        product = catalog.product(line.sku)
        if product is None:
            raise Unprocessable(f"unknown sku {line.sku!r}", field=f"{field}.{index}.sku")
        if not product.active:
            raise Unprocessable(f"sku {line.sku!r} is no longer sold", field=f"{field}.{index}.sku")
        if line.discount_percent > catalog.max_discount_percent:
            raise Unprocessable(
                f"a discount of {line.discount_percent}% is more than the "
                f"{catalog.max_discount_percent}% allowed",
                field=f"{field}.{index}.discount_percent",
            )
        unit_price = net_unit_price(product.unit_price, line.discount_percent)
        priced.append(
            PricedLine(
                sku=product.sku,
                name=product.name,
                quantity=line.quantity,
                list_price=product.unit_price,
                discount_percent=line.discount_percent,
                unit_price=unit_price,
                line_total=unit_price * line.quantity,
            )
        )
    list_amount = sum((line.list_price * line.quantity for line in priced), Decimal("0"))
    amount = sum((line.line_total for line in priced), Decimal("0"))
    return Quote(
        lines=priced,
        list_amount=list_amount,
        discount_amount=list_amount - amount,
        amount=amount,
        currency=catalog.currency,
        catalog_version=catalog.version,
    )


DEFAULT_CATALOG_FILE = Path(__file__).resolve().parent.parent / "config" / "catalog.yaml"
