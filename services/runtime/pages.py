"""Paged lists: a table's entries in key order, a page at a time, from every worker.

A list walks the keys of the partitions each worker holds (no value is decoded
for that), sorts them, and decodes entries from the cursor on until the page is
full; then the asking worker merges the workers' pages by key. So a page costs
one pass over the keys plus the entries it looks at, never an answer the size
of the table. Key order is stable under writes: an entry written after a page
was read shows up on a later page if its key comes later, never twice.
"""

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from services.runtime.errors import DomainError

T = TypeVar("T")
M = TypeVar("M")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BadCursor(DomainError):
    status = 422


class PageQuery(BaseModel):
    limit: int
    after: str | None


def page_query(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=400, description="`next_cursor` of the previous page")
    ] = None,
) -> PageQuery:
    """The paging parameters every list route takes (a FastAPI dependency)."""
    return PageQuery(limit=limit, after=None if cursor is None else _decode(cursor))


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as bad:
        raise BadCursor("cursor is not one this API gave out", field="cursor") from bad


def local_page(
    keys: Iterable[str],
    get: Callable[[str], M | None],
    item: Callable[[M], dict[str, Any] | None],
    query: PageQuery,
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """The first `query.limit` items after the cursor, in key order, and whether
    more follow. `item` renders an entry, or returns None to leave it out (a filter)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for key in sorted(k for k in keys if query.after is None or k > query.after):
        value = get(key)
        rendered = None if value is None else item(value)
        if rendered is not None:
            found.append((key, rendered))
            if len(found) > query.limit:
                return found[: query.limit], True
    return found, False


def merge(
    pages: Iterable[tuple[list[tuple[str, dict[str, Any]]], bool]], query: PageQuery
) -> Page[dict[str, Any]]:
    """One page out of the workers' pages, each in key order."""
    entries: list[tuple[str, dict[str, Any]]] = []
    more = False
    for items, has_more in pages:
        entries.extend(items)
        more = more or has_more
    entries.sort(key=lambda entry: entry[0])
    more = more or len(entries) > query.limit
    entries = entries[: query.limit]
    cursor = encode_cursor(entries[-1][0]) if more and entries else None
    return Page(items=[item for _, item in entries], next_cursor=cursor)
