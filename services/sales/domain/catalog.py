"""The product catalogue: sales can only sell what it holds, at its prices."""

from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from schemas.events import DealLine
from schemas.money import Amount, Currency
from services.runtime.errors import Unprocessable


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
    products: list[Product]

    def product(self, sku: str) -> Product | None:
        return next((p for p in self.products if p.sku == sku), None)

    @classmethod
    def load(cls, path: Path) -> "Catalog":
        catalog = cls.model_validate(yaml.safe_load(path.read_text()))
        mixed = [p.sku for p in catalog.products if p.currency != catalog.currency]
        if mixed:
            raise ValueError(f"catalogue {path}: {mixed} not priced in {catalog.currency}")
        return catalog


class OrderedLine(BaseModel):
    """What a rep asks for at close: a sku and a quantity; the price is the catalogue's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=100_000)


def price(lines: list[OrderedLine], catalog: Catalog) -> tuple[list[DealLine], Decimal]:
    """The lines priced from the catalogue and their total; refuses unknown or inactive skus."""
    if not lines:
        raise Unprocessable("a won deal needs at least one line", field="lines")
    priced = []
    for index, line in enumerate(lines):
        product = catalog.product(line.sku)
        if product is None:
            raise Unprocessable(f"unknown sku {line.sku!r}", field=f"lines.{index}.sku")
        if not product.active:
            raise Unprocessable(f"sku {line.sku!r} is no longer sold", field=f"lines.{index}.sku")
        priced.append(
            DealLine(
                sku=product.sku, name=product.name, quantity=line.quantity, unit_price=product.unit_price
            )
        )
    return priced, sum((line.unit_price * line.quantity for line in priced), Decimal("0"))


DEFAULT_CATALOG_FILE = Path(__file__).resolve().parent.parent / "config" / "catalog.yaml"
