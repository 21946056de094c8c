"""Write the JSON Schema of every event (envelope included) into schemas/json/.

    python -m schemas.generate          write the files
    python -m schemas.generate --check  exit 1 when a committed file is stale

One file per event type and version: schemas/json/<type>/v<version>.json. Files of
earlier versions stay: they are what released subscribers validate against.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.envelope import CloudEvent
from schemas.events import EVENT_DATA, EventData

JSON_DIR = Path(__file__).parent / "json"


def schema_path(event_type: str, version: int) -> Path:
    return JSON_DIR / event_type / f"v{version}.json"


def event_schema(data_model: type[EventData]) -> dict[str, Any]:
    """The schema of a whole record value: the envelope with this event's data."""
    schema = CloudEvent[data_model].model_json_schema(mode="serialization")  # type: ignore[valid-type]
    schema["title"] = f"{data_model.TYPE} v{data_model.VERSION}"
    schema["properties"]["type"] = {"const": data_model.TYPE}
    schema["properties"]["dataschema"] = {"const": data_model.dataschema()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": data_model.dataschema(),
        **schema,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    return {
        schema_path(model.TYPE, model.VERSION): render(event_schema(model)) for model in EVENT_DATA.values()
    }


def stale_files() -> list[Path]:
    return [path for path, text in expected_files().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when files are stale")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for path in stale:
            print(f"stale: {path} (run: python -m schemas.generate)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
