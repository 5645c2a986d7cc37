"""The earnings page: the chart from the totals of every line, the table one page at a time."""

from __future__ import annotations

import re

from milepost.cashflow import forecast as fc
from tests.factories import make_order, make_user
from tests.web.test_web_changes import backend, login  # noqa: F401  (fixtures)


def test_earnings_table_pages_with_a_more_link_and_ignores_a_bad_cursor(runtime, login, monkeypatch):  # noqa: F811
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    for _ in range(3):
        make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000,) * 3)
    monkeypatch.setattr(fc, "DEFAULT_LINES", 4)
    client = login("seller@example.com")
    first = client.get("/earnings")
    assert first.status_code == 200
    assert "4 of 9 lines" in first.text
    more = re.search(r'href="(/earnings\?after=[^"#]+)', first.text)
    assert more, "no link to the next lines"
    second = client.get(more.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "Later lines" in second.text and 'href="/earnings#fc-h"' in second.text
    assert client.get("/earnings", params={"after": "garbage!"}).status_code == 200
    assert client.get("/earnings", params={"after": "x" * 5000}).status_code == 200
