"""Faust tables of pydantic models, keyed by string.

Values are stored as JSON in the changelog, so a table survives a worker restart
and can be read by a human with any Kafka tool.
"""

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import faust
from faust.types import TableT
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class ModelTable(Generic[M]):
    def __init__(
        self,
        app: faust.App,
        name: str,
        model: type[M],
        *,
        help: str,  # noqa: A002 - Faust's own argument name
        everywhere: bool = False,
    ) -> None:
        """`everywhere`: a GlobalTable, every worker holds every key (small reference data)."""
        kind = app.GlobalTable if everywhere else app.Table
        self.model = model
        # Keys are raw bytes on the changelog, as on the event topics, so a key
        # hashes to the same partition number everywhere (see cluster.Cluster).
        self.table: TableT[bytes, Any] = kind(name, key_type=bytes, default=None, help=help)

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, key: str) -> M | None:
        raw = self.table.get(key.encode())
        return None if raw is None else self.model.model_validate(raw)

    def __setitem__(self, key: str, value: M) -> None:
        self.table[key.encode()] = value.model_dump(mode="json")

    def __contains__(self, key: str) -> bool:
        return key.encode() in self.table

    def items(self) -> Iterator[tuple[str, M]]:
        for key, raw in list(self.table.items()):
            yield key.decode(), self.model.model_validate(raw)

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()
