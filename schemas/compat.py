"""The compatibility gate: a released event version only gains optional fields.

Subscribers rely on the last *released* JSON Schema of each event version, kept
in schemas/released/<type>/v<N>.json. Within one version the set of valid
records may not change, in either direction: records already on the topics
(replayed from the start) must stay valid under the current schema, and what
producers write now must stay valid under the released file a subscriber
validates with. So a removed field, a retyped one, a new required field, a field
no longer required, an enum or const changed either way and a changed constraint
(pattern, format, length, bounds...) are breaking; a new optional field and a
changed title, description, example or default are not. A breaking change bumps
the model's VERSION: a version with no released copy yet is free to change.

    python -m schemas.compat                     check every event; exit 1 on a break
    python -m schemas.compat --release TYPE ...  record the current schemas of TYPE as released
"""

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.events import EVENT_DATA, EventData
from schemas.generate import event_schema, render

RELEASED_DIR = Path(__file__).parent / "released"

Schema = dict[str, Any]

# Keywords that document a schema without changing which records are valid.
ANNOTATIONS = frozenset({"title", "description", "examples", "default", "$comment", "deprecated"})
# Keywords compared structurally below; any other one that differs is a changed constraint.
STRUCTURE = frozenset(
    {"$ref", "$defs", "$id", "$schema", "type", "anyOf", "oneOf", "allOf", "enum", "const"}
    | {"properties", "required", "items"}
)


@dataclass(frozen=True)
class Break:
    """One change that breaks subscribers of the released schema."""

    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '(record)'}: {self.kind}: {self.detail}"


def breaking_changes(released: Schema, current: Schema) -> list[Break]:
    """Every way `current` breaks subscribers of `released` (the same event version)."""
    return list(_Comparison(released, current).compare(released, current, "", frozenset()))


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root

    def compare(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> Iterator[Break]:
        refs = (old.get("$ref", ""), new.get("$ref", ""))
        if refs != ("", "") and refs in seen:
            return  # a recursive definition already under comparison
        seen = seen | {refs} if refs != ("", "") else seen
        old_by_type = _by_type(_branches(_resolve(old, self.old_root), self.old_root))
        new_by_type = _by_type(_branches(_resolve(new, self.new_root), self.new_root))
        if old_by_type.keys() != new_by_type.keys():
            yield Break(path, "retyped", f"was {_types(old_by_type)}, now {_types(new_by_type)}")
        for json_type in old_by_type.keys() & new_by_type.keys():
            yield from self._compare_branch(
                old_by_type[json_type], new_by_type[json_type], json_type, path, seen
            )

    def _compare_branch(
        self, old: Schema, new: Schema, json_type: str, path: str, seen: frozenset[tuple[str, str]]
    ) -> Iterator[Break]:
        yield from _compare_values(old, new, path)
        for keyword in sorted((old.keys() | new.keys()) - ANNOTATIONS - STRUCTURE):
            if old.get(keyword) != new.get(keyword):
                yield Break(
                    path,
                    "changed constraint",
                    f"{keyword} was {old.get(keyword)!r}, now {new.get(keyword)!r}",
                )
        if json_type == "object":
            yield from self._compare_properties(old, new, path, seen)
        if json_type == "array" and ("items" in old or "items" in new):
            yield from self.compare(old.get("items", {}), new.get("items", {}), f"{path}[]", seen)

    def _compare_properties(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> Iterator[Break]:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        for name in sorted(old_props.keys() | new_props.keys()):
            where = f"{path}.{name}" if path else name
            if name not in new_props:
                yield Break(where, "removed field", "subscribers may read it")
            elif name not in old_props:
                if name in new_required:
                    yield Break(where, "new required field", "records already written lack it")
            else:
                if name in old_required and name not in new_required:
                    yield Break(where, "no longer required", "subscribers may rely on its presence")
                if name in new_required and name not in old_required:
                    yield Break(where, "new required field", "it was optional: records may lack it")
                yield from self.compare(old_props[name], new_props[name], where, seen)


def _compare_values(old: Schema, new: Schema, path: str) -> Iterator[Break]:
    old_values = _allowed_values(old)
    new_values = _allowed_values(new)
    if old_values == new_values:
        return
    if new_values is not None and (old_values is None or not new_values >= old_values):
        removed = "any other value" if old_values is None else ", ".join(sorted(old_values - new_values))
        yield Break(path, "narrowed enum", f"no longer allowed: {removed}")
    if old_values is not None and (new_values is None or not old_values >= new_values):
        added = "any value" if new_values is None else ", ".join(sorted(new_values - old_values))
        yield Break(path, "widened enum", f"newly allowed: {added}")


def _allowed_values(schema: Schema) -> set[str] | None:
    """The values `enum`/`const` allow (as JSON text, to compare any type), or None for any."""
    if "const" in schema:
        return {json.dumps(schema["const"], sort_keys=True)}
    if "enum" in schema:
        return {json.dumps(value, sort_keys=True) for value in schema["enum"]}
    return None


def _resolve(schema: Schema, root: Schema) -> Schema:
    """`schema` with local $refs and allOf parts merged in (annotations beside a $ref kept)."""
    merged = {k: v for k, v in schema.items() if k not in ("$ref", "allOf")}
    parts: list[Schema] = []
    if "$ref" in schema:
        parts.append(_resolve(_pointer(root, schema["$ref"]), root))
    parts += [_resolve(part, root) for part in schema.get("allOf", [])]
    for part in parts:
        merged = {**part, **merged}
    return merged


def _pointer(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $refs can be compared, not {ref!r}")
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return dict(node)


def _branches(schema: Schema, root: Schema) -> list[Schema]:
    """The alternatives a schema allows (anyOf/oneOf flattened), each resolved."""
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema]
    shared = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    return [branch for part in alternatives for branch in _branches({**shared, **_resolve(part, root)}, root)]


def _by_type(branches: Iterable[Schema]) -> dict[str, Schema]:
    by_type: dict[str, Schema] = {}
    for branch in branches:
        for json_type in _json_types(branch):
            by_type[json_type] = branch
    return by_type


def _json_types(schema: Schema) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [str(t) for t in declared]
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if values is not None:
        return sorted({_json_type(value) for value in values})
    return ["any"]


def _json_type(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int():
            return "integer"
        case float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
    return "object"


def _types(by_type: dict[str, Schema]) -> str:
    return " or ".join(sorted(by_type)) or "nothing"


# -- the gate over the real models --------------------------------------------


def released_path(event_type: str, version: int, released_dir: Path = RELEASED_DIR) -> Path:
    return released_dir / event_type / f"v{version}.json"


def check(model: type[EventData], released_dir: Path = RELEASED_DIR) -> list[Break]:
    """How the model's current schema breaks its released version; [] when that version
    was never released (a new version may still change)."""
    path = released_path(model.TYPE, model.VERSION, released_dir)
    if not path.exists():
        return []
    return breaking_changes(json.loads(path.read_text()), event_schema(model))


def check_all(
    models: Iterable[type[EventData]] = EVENT_DATA.values(), released_dir: Path = RELEASED_DIR
) -> dict[str, list[Break]]:
    """The breaks of every model that has any, by `<type> v<version>`."""
    found = {f"{m.TYPE} v{m.VERSION}": check(m, released_dir) for m in models}
    return {name: breaks for name, breaks in found.items() if breaks}


def release(model: type[EventData], released_dir: Path = RELEASED_DIR) -> Path:
    """Record the model's current schema as its version's released one."""
    breaks = check(model, released_dir)
    if breaks:
        raise ValueError(
            f"{model.TYPE} v{model.VERSION} breaks its released schema; bump VERSION instead: "
            + "; ".join(map(str, breaks))
        )
    path = released_path(model.TYPE, model.VERSION, released_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(event_schema(model)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", nargs="+", metavar="TYPE", choices=sorted(EVENT_DATA), default=[])
    args = parser.parse_args(argv)
    if args.release:
        try:
            for event_type in args.release:
                print(f"released {release(EVENT_DATA[event_type], RELEASED_DIR)}")
        except ValueError as refused:
            print(refused, file=sys.stderr)
            return 1
        return 0
    failures = check_all(EVENT_DATA.values(), RELEASED_DIR)
    for name, breaks in failures.items():
        print(f"{name} breaks its released schema (bump VERSION in schemas/events.py):", file=sys.stderr)
        for found in breaks:
            print(f"  {found}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
