"""Paged lists: key order, a cursor that resumes after the last key, workers merged."""

import pytest

from services.runtime.pages import BadCursor, PageQuery, encode_cursor, local_page, merge, page_query

TABLE = {f"lead-{i:02d}": {"lead_id": f"lead-{i:02d}", "even": i % 2 == 0} for i in range(10)}


class CountingTable:
    """The table's reads, counted: a page must not read past what it needs."""

    def __init__(self) -> None:
        self.reads = 0

    def get(self, key: str) -> dict[str, object] | None:
        self.reads += 1
        return TABLE.get(key)


def page(limit: int, after: str | None = None) -> PageQuery:
    return PageQuery(limit=limit, after=after)


def test_a_page_is_the_next_keys_in_order_and_says_whether_more_follow() -> None:
    table = CountingTable()
    items, more = local_page(reversed(list(TABLE)), table.get, dict, page(3, after="lead-04"))
    assert [key for key, _ in items] == ["lead-05", "lead-06", "lead-07"]
    assert more
    assert table.reads == 4  # the page and one more, to know there is more
    last, more = local_page(TABLE, table.get, dict, page(3, after="lead-07"))
    assert [key for key, _ in last] == ["lead-08", "lead-09"]
    assert not more


def test_a_filter_reads_on_until_the_page_is_full() -> None:
    def evens(value: dict[str, object]) -> dict[str, object] | None:
        return value if value["even"] else None

    items, more = local_page(TABLE, TABLE.get, evens, page(2))
    assert [key for key, _ in items] == ["lead-00", "lead-02"]
    assert more


def test_workers_pages_merge_into_one_page_in_key_order_with_a_cursor_to_resume() -> None:
    keys = sorted(TABLE)
    one = local_page(keys[0::2], TABLE.get, dict, page(3))
    two = local_page(keys[1::2], TABLE.get, dict, page(3))
    first = merge([one, two], page(3))
    assert [item["lead_id"] for item in first.items] == ["lead-00", "lead-01", "lead-02"]
    assert first.next_cursor == encode_cursor("lead-02")
    after = page_query(limit=3, cursor=first.next_cursor).after
    assert after == "lead-02"
    seen: list[object] = [item["lead_id"] for item in first.items]
    while after is not None:
        query = page(3, after)
        pages = [local_page(keys[i::2], TABLE.get, dict, query) for i in (0, 1)]
        listed = merge(pages, query)
        seen += [item["lead_id"] for item in listed.items]
        after = None if listed.next_cursor is None else page_query(3, listed.next_cursor).after
    assert seen == keys


def test_the_last_page_has_no_cursor_and_an_empty_table_one_empty_page() -> None:
    assert merge([local_page(TABLE, TABLE.get, dict, page(10))], page(10)).next_cursor is None
    empty = merge([([], False), ([], False)], page(10))
    assert (empty.items, empty.next_cursor) == ([], None)


def test_a_cursor_this_api_did_not_give_is_refused_with_the_field() -> None:
    with pytest.raises(BadCursor) as refused:
        page_query(limit=10, cursor="%%%")
    assert refused.value.field == "cursor"
    assert refused.value.status == 422
