"""Catalogue pricing: only active skus, catalogue prices, explicit and bounded discounts."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.runtime.errors import Unprocessable
from services.sales.domain.catalog import DEFAULT_CATALOG_FILE, Catalog, OrderedLine, net_unit_price, quote
from tests.unit.sales.samples import CATALOG


def test_lines_are_priced_from_the_catalogue() -> None:
    sold = quote([OrderedLine(sku="CORE", quantity=1), OrderedLine(sku="SEAT", quantity=5)], CATALOG)
    assert [(line.sku, line.name, str(line.unit_price), str(line.line_total)) for line in sold.lines] == [
        ("CORE", "Core", "12000.00", "12000.00"),
        ("SEAT", "Seat", "480.00", "2400.00"),
    ]
    assert str(sold.amount) == "14400.00"
    assert str(sold.list_amount) == "14400.00"
    assert str(sold.discount_amount) == "0.00"
    assert (sold.currency, sold.catalog_version) == ("EUR", "test-1")


def test_a_discount_lowers_the_unit_price_and_the_lines_still_add_up() -> None:
    sold = quote(
        [
            OrderedLine(sku="CORE", quantity=2, discount_percent=Decimal("10")),
            OrderedLine(sku="ODD", quantity=3, discount_percent=Decimal("12.5")),
        ],
        CATALOG,
    )
    core, odd = sold.lines
    assert (str(core.list_price), str(core.unit_price), str(core.line_total)) == (
        "12000.00",
        "10800.00",
        "21600.00",
    )
    # 99.99 * 0.875 = 87.49125, rounded to the cent.
    assert (str(odd.unit_price), str(odd.line_total)) == ("87.49", "262.47")
    assert sold.amount == sum(line.unit_price * line.quantity for line in sold.lines)
    assert str(sold.amount) == "21862.47"
    assert str(sold.list_amount) == "24299.97"
    assert sold.discount_amount == sold.list_amount - sold.amount
    # What deal.closed carries: the net unit price, so lines times quantities make the amount.
    assert [str(line.as_event_line().unit_price) for line in sold.lines] == ["10800.00", "87.49"]


def test_the_discount_is_capped_by_the_catalogue() -> None:
    assert str(
        quote([OrderedLine(sku="SEAT", quantity=1, discount_percent=Decimal(15))], CATALOG).amount
    ) == ("408.00")
    with pytest.raises(Unprocessable) as error:
        quote(
            [
                OrderedLine(sku="SEAT", quantity=1),
                OrderedLine(sku="CORE", quantity=1, discount_percent=Decimal(16)),
            ],
            CATALOG,
        )
    assert error.value.field == "lines.1.discount_percent"
    assert "15" in error.value.reason


@pytest.mark.parametrize("bad", [Decimal(-1), Decimal(101), Decimal("1.005")])
def test_a_discount_is_a_percentage_with_at_most_two_decimals(bad: Decimal) -> None:
    with pytest.raises(ValidationError):
        OrderedLine(sku="SEAT", quantity=1, discount_percent=bad)


def test_unknown_and_inactive_skus_are_refused_with_their_field() -> None:
    with pytest.raises(Unprocessable) as unknown:
        quote([OrderedLine(sku="CORE", quantity=1), OrderedLine(sku="NOPE", quantity=1)], CATALOG)
    assert unknown.value.field == "lines.1.sku"
    assert "NOPE" in unknown.value.reason
    with pytest.raises(Unprocessable) as inactive:
        quote([OrderedLine(sku="OLD", quantity=1)], CATALOG)
    assert inactive.value.field == "lines.0.sku"


def test_the_field_at_fault_is_named_as_the_request_names_the_lines() -> None:
    with pytest.raises(Unprocessable) as error:
        quote([OrderedLine(sku="NOPE", quantity=1)], CATALOG, field="proposal")
    assert error.value.field == "proposal.0.sku"


def test_no_lines_is_refused() -> None:
    with pytest.raises(Unprocessable) as error:
        quote([], CATALOG)
    assert error.value.field == "lines"


def test_net_unit_price_rounds_half_up_to_the_cent() -> None:
    assert net_unit_price(Decimal("10.05"), Decimal("50")) == Decimal("5.03")
    assert net_unit_price(Decimal("480.00"), Decimal("0")) == Decimal("480.00")


def test_the_shipped_catalogue_loads_with_a_discount_cap() -> None:
    catalog = Catalog.load(DEFAULT_CATALOG_FILE)
    assert catalog.currency == "EUR"
    assert Decimal(0) < catalog.max_discount_percent <= Decimal(100)
    assert any(not p.active for p in catalog.products)


def test_a_catalogue_with_a_foreign_currency_or_a_repeated_sku_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.yaml"
    foreign.write_text(
        'version: "1"\ncurrency: EUR\nproducts:\n  - {sku: A, name: A, unit_price: "1.00", currency: USD}\n'
    )
    with pytest.raises(ValueError, match="not priced in EUR"):
        Catalog.load(foreign)
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        'version: "1"\ncurrency: EUR\nproducts:\n'
        '  - {sku: A, name: A, unit_price: "1.00", currency: EUR}\n'
        '  - {sku: A, name: B, unit_price: "2.00", currency: EUR}\n'
    )
    with pytest.raises(ValueError, match="twice"):
        Catalog.load(twice)
