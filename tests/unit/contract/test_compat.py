"""The compatibility gate: it catches each kind of breaking change, lets the
harmless ones through, and holds the real models to their released schemas."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schemas import compat, generate
from schemas.compat import Break, breaking_changes
from schemas.events import EVENT_DATA, DealClosed

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def released() -> Schema:
    return generate.event_schema(DealClosed)


def changed(schema: Schema, change: Callable[[Schema], object]) -> Schema:
    broken = copy.deepcopy(schema)
    change(broken)
    return broken


def kinds(breaks: list[Break]) -> set[tuple[str, str]]:
    return {(b.path, b.kind) for b in breaks}


def data(schema: Schema) -> Schema:
    definition: Schema = schema["$defs"]["DealClosed"]
    return definition


def test_the_same_schema_breaks_nothing(released: Schema) -> None:
    assert breaking_changes(released, copy.deepcopy(released)) == []


BREAKING: list[tuple[str, Callable[[Schema], object], tuple[str, str]]] = [
    (
        "removed field",
        lambda s: data(s)["properties"].pop("owner"),
        ("data.owner", "removed field"),
    ),
    (
        "removed optional nested field",
        lambda s: s["$defs"]["Contact"]["properties"].pop("phone"),
        ("data.customer.contact.phone", "removed field"),
    ),
    (
        "retyped field",
        lambda s: data(s)["properties"].__setitem__("amount", {"type": "number"}),
        ("data.amount", "retyped"),
    ),
    (
        "retyped field inside a list",
        lambda s: s["$defs"]["DealLine"]["properties"]["quantity"].__setitem__("type", "string"),
        ("data.lines[].quantity", "retyped"),
    ),
    (
        "nullable field made non-null",
        lambda s: data(s)["properties"].__setitem__("campaign_id", {"type": "string"}),
        ("data.campaign_id", "retyped"),
    ),
    (
        "field made nullable",
        lambda s: data(s)["properties"].__setitem__(
            "deal_id", {"anyOf": [{"type": "string"}, {"type": "null"}]}
        ),
        ("data.deal_id", "retyped"),
    ),
    (
        "new required field",
        lambda s: (
            data(s)["properties"].__setitem__("region", {"type": "string"}),
            data(s)["required"].append("region"),
        ),
        ("data.region", "new required field"),
    ),
    (
        "optional field made required",
        lambda s: data(s)["required"].append("lost_reason"),
        ("data.lost_reason", "new required field"),
    ),
    (
        "required field made optional",
        lambda s: data(s)["required"].remove("closed_at"),
        ("data.closed_at", "no longer required"),
    ),
    (
        "narrowed enum",
        lambda s: s["$defs"]["Outcome"]["enum"].remove("lost"),
        ("data.outcome", "narrowed enum"),
    ),
    (
        "widened enum",
        lambda s: s["$defs"]["LostReason"]["enum"].append("price"),
        ("data.lost_reason", "widened enum"),
    ),
    (
        "tightened constraint",
        lambda s: s["$defs"]["Contact"]["properties"]["email"].__setitem__("maxLength", 100),
        ("data.customer.contact.email", "changed constraint"),
    ),
    (
        "relaxed constraint",
        lambda s: data(s)["properties"]["currency"].pop("pattern"),
        ("data.currency", "changed constraint"),
    ),
    (
        "changed format",
        lambda s: data(s)["properties"]["closed_at"].__setitem__("format", "date"),
        ("data.closed_at", "changed constraint"),
    ),
    (
        "closed to unknown fields",
        lambda s: data(s).__setitem__("additionalProperties", False),
        ("data", "changed constraint"),
    ),
    (
        "changed envelope const",
        lambda s: s["properties"]["specversion"].__setitem__("const", "2.0"),
        ("specversion", "narrowed enum"),
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [(c, e) for _, c, e in BREAKING], ids=[n for n, _, _ in BREAKING]
)
def test_each_kind_of_breaking_change_is_caught(
    released: Schema, change: Callable[[Schema], object], expected: tuple[str, str]
) -> None:
    breaks = breaking_changes(released, changed(released, change))
    assert expected in kinds(breaks), breaks


HARMLESS: list[tuple[str, Callable[[Schema], object]]] = [
    ("new optional field", lambda s: data(s)["properties"].__setitem__("region", {"type": "string"})),
    ("new description", lambda s: data(s)["properties"]["amount"].__setitem__("description", "Total")),
    ("new title", lambda s: s["$defs"]["Outcome"].__setitem__("title", "DealOutcome")),
    ("new example", lambda s: data(s)["properties"]["amount"].__setitem__("examples", ["9.99"])),
    ("enum values reordered", lambda s: s["$defs"]["Outcome"].__setitem__("enum", ["lost", "won"])),
    (
        "definition inlined instead of referenced",
        lambda s: data(s)["properties"].__setitem__("outcome", copy.deepcopy(s["$defs"]["Outcome"])),
    ),
]


@pytest.mark.parametrize("change", [c for _, c in HARMLESS], ids=[n for n, _ in HARMLESS])
def test_harmless_changes_pass(released: Schema, change: Callable[[Schema], object]) -> None:
    assert breaking_changes(released, changed(released, change)) == []


def test_a_break_says_where_what_and_why(released: Schema) -> None:
    [found] = breaking_changes(released, changed(released, lambda s: data(s)["properties"].pop("owner")))
    assert str(found) == "data.owner: removed field: subscribers may read it"


# -- the gate over models and released files -----------------------------------


class RetypedDealClosed(DealClosed):
    """deal.closed v1 with its amount as a number: a breaking change kept at v1."""

    amount: float  # type: ignore[assignment]


class BumpedDealClosed(RetypedDealClosed):
    VERSION = 2


def release_all(directory: Path) -> None:
    for model in EVENT_DATA.values():
        compat.release(model, directory)


def test_a_breaking_change_to_a_released_version_fails_the_gate(tmp_path: Path) -> None:
    release_all(tmp_path)
    failures = compat.check_all([RetypedDealClosed], tmp_path)
    assert list(failures) == ["deal.closed v1"]
    assert ("data.amount", "retyped") in kinds(failures["deal.closed v1"])
    with pytest.raises(ValueError, match="bump VERSION"):
        compat.release(RetypedDealClosed, tmp_path)


def test_the_same_change_passes_once_the_version_is_bumped(tmp_path: Path) -> None:
    release_all(tmp_path)
    assert compat.check_all([BumpedDealClosed], tmp_path) == {}
    # Once v2 is released, it is held to what it was released as.
    compat.release(BumpedDealClosed, tmp_path)
    assert (tmp_path / "deal.closed" / "v2.json").exists()
    assert compat.check_all([BumpedDealClosed], tmp_path) == {}


def test_the_command_line_gate_exits_non_zero_on_a_break(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    release_all(tmp_path)
    monkeypatch.setattr(compat, "RELEASED_DIR", tmp_path)
    assert compat.main([]) == 0
    broken = json.loads((tmp_path / "deal.closed" / "v1.json").read_text())
    broken["$defs"]["DealClosed"]["properties"]["legacy_code"] = {"type": "string"}
    (tmp_path / "deal.closed" / "v1.json").write_text(json.dumps(broken))
    assert compat.main([]) == 1
    assert "data.legacy_code: removed field" in capsys.readouterr().err


def test_the_real_models_keep_their_released_schemas() -> None:
    assert compat.check_all() == {}


@pytest.mark.parametrize("model", list(EVENT_DATA.values()), ids=list(EVENT_DATA))
def test_every_event_has_a_released_version_subscribers_can_validate_with(model: type[DealClosed]) -> None:
    released = sorted((compat.RELEASED_DIR / model.TYPE).glob("v*.json"))
    assert released, f"no released schema of {model.TYPE}"
    for path in released:
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
