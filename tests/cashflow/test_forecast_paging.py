"""The database forecast (totals in SQL, lines a page at a time) against the pure rules.

`seller_forecast` computes the open milestones' schedule in one SQL statement; these tests hold it
equal to `build_forecast` over the same milestones loaded as plain values, on SQLite and PostgreSQL,
for random milestone states, terms and time zones — and show that the pages, concatenated, are the
whole schedule and that the totals are the sums of every line.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from milepost.accounts import service as accounts
from milepost.app import create_app
from milepost.cashflow import forecast as fc
from milepost.cashflow import repository as repo
from milepost.errors import InvalidInput
from milepost.orders.models import Milestone, Order
from tests.factories import make_order, make_user

ZONES = ["UTC", "Asia/Tokyo", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Santiago"]
STATUSES = ["pending", "in_progress", "delivered", "disputed", "approved", "resolved", "cancelled"]


def scramble(runtime, clock, seller, buyer, rnd: random.Random, orders: int = 12) -> None:
    """Orders made by the services, then their rows set to random (but well-typed) states: the
    forecast rules must hold for any state the tables can hold, not only for the usual ones.

    The rows are changed through the ORM, like every command changes them, so the flush keeps
    their forecast schedule rows current the production way (`cashflow.projector`)."""
    ids = [make_order(runtime, buyer=buyer, seller=seller, amounts=tuple(rnd.choice([1_000, 10_001, 123_457])
                                                                          for _ in range(rnd.randint(1, 4))),
                      currency=rnd.choice(["USD", "EUR"]), funded=rnd.random() < 0.8)
           for _ in range(orders)]
    now = clock.now()
    with runtime.unit_of_work() as ctx:
        for order_id in ids:
            order = ctx.session.get(Order, order_id)
            order.release = rnd.choice(["per_milestone", "on_completion"])
            order.review_days = rnd.randint(1, 9)
            order.clearance_days = rnd.randint(0, 9)
            order.seller_fee_bps = rnd.choice([0, 250, 1000])
            order.late_grace_hours = rnd.choice([0, 24])
            order.dispute_negotiation_days = rnd.randint(1, 9)
            for m in ctx.session.scalars(select(Milestone).where(Milestone.order_id == order_id)):
                status = rnd.choice(STATUSES)
                funded = rnd.choice([0, m.amount])
                released = rnd.choice([0, funded // 3])
                held = 0 if status == "cancelled" else rnd.choice([0, 0, max(0, funded - released) // 2])
                m.status, m.funded_amount, m.released_amount, m.refunded_amount = status, funded, released, 0
                m.held_for_seller_amount, m.due_days = held, rnd.randint(1, 20)
                m.due_at = rnd.choice([None, now + timedelta(seconds=rnd.randint(-200 * 3600, 200 * 3600),
                                                             microseconds=rnd.randint(0, 999_999))])
                m.review_due_at = rnd.choice([None, now + timedelta(hours=rnd.randint(-50, 300))])


def reference(runtime, seller_id: str, tz: str) -> fc.Forecast:
    """The pure rules over the same rows: milestones as `MilestoneInput`s, lots, available."""
    with runtime.reading() as ctx:
        rows = repo.open_milestone_rows(ctx.session, seller_id=seller_id)
        inputs = fc._milestone_inputs(ctx.session, rows)
        full = fc.seller_forecast(ctx.session, seller_id, now=ctx.now, tz=tz, all_lines=True)
        available = {line.currency: line.amount for line in full.lines if line.certainty == fc.Certainty.AVAILABLE}
        lots = [fc.LotInput(r[0], r[1], r[2], r[3], r[4], r[5], r[6], int(r[7]), int(r[8]), int(r[9]), r[11])
                for r in repo.open_lot_rows(ctx.session, seller_id)]
        return fc.build_forecast(now=ctx.now, milestones=inputs, lots=lots, available=available, tz=tz)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_database_schedule_equals_the_pure_rules_and_pages_concatenate(runtime, clock, seed):
    rnd = random.Random(seed)
    seller = make_user(runtime, email="s@example.com")
    buyer = make_user(runtime, email="b@example.com")
    scramble(runtime, clock, seller, buyer, rnd)
    tz = rnd.choice(ZONES)
    expected = reference(runtime, seller.id, tz)
    with runtime.reading() as ctx:
        full = fc.seller_forecast(ctx.session, seller.id, now=ctx.now, tz=tz, all_lines=True)
    assert full.lines == sorted(expected.lines, key=fc.line_key)
    assert sorted(full.excluded, key=lambda e: (e.order_id, e.seq)) == sorted(expected.excluded,
                                                                               key=lambda e: (e.order_id, e.seq))
    assert (full.weekly, full.monthly, full.totals) == (expected.weekly, expected.monthly, expected.totals)
    assert full.line_count == len(full.lines) and full.next_cursor is None
    assert len(full.lines) > 5

    for size in (1, 3, 1000):
        pages, after = [], None
        while True:
            with runtime.reading() as ctx:
                page = fc.seller_forecast(ctx.session, seller.id, now=ctx.now, tz=tz, limit=size, after=after)
            assert len(page.lines) <= size
            # the totals are whole on every page
            assert (page.weekly, page.monthly, page.totals, page.line_count) == (
                full.weekly, full.monthly, full.totals, full.line_count)
            pages.extend(page.lines)
            after = page.next_cursor
            if after is None:
                break
        assert pages == full.lines

    # The totals are the sums of every line, per currency, certainty and local week.
    sums: dict[tuple[str, str, str], int] = {}
    for line in full.lines:
        iso = line.expected_at.astimezone(ZoneInfo(tz)).isocalendar()
        key = (line.currency, f"{iso.year}-W{iso.week:02d}", str(line.certainty))
        sums[key] = sums.get(key, 0) + line.amount
    assert sums == {(w.currency, w.period, c): v for w in full.weekly for c, v in w.by_certainty.items()}


def test_default_page_is_the_first_lines_with_a_cursor(runtime, clock):
    seller = make_user(runtime, email="s@example.com")
    buyer = make_user(runtime, email="b@example.com")
    for _ in range(3):
        make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000,) * 4)
    with runtime.reading() as ctx:
        first = fc.seller_forecast(ctx.session, seller.id, now=ctx.now, limit=5)
        everything = fc.seller_forecast(ctx.session, seller.id, now=ctx.now)
    assert len(first.lines) == 5 and first.line_count == 12 and first.next_cursor
    assert everything.lines[:5] == first.lines and everything.next_cursor is None  # 12 < DEFAULT_LINES


@pytest.mark.parametrize("cursor", ["", "x", "@@@", "W10", "WyJhIl0", fc.encode_cursor((1, 2, "USD", "o", 1, "m"))[:-3],
                                    "a" * 401, "WzEsMiwzLDQsNSw2XQ"])
def test_bad_cursor_is_invalid_input(cursor):
    with pytest.raises(InvalidInput):
        fc.decode_cursor(cursor)


@pytest.mark.parametrize("limit", [0, -1, fc.MAX_LINES + 1, True])
def test_bad_limit_is_invalid_input(limit):
    with pytest.raises(InvalidInput):
        fc.page_limit(limit)


_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=40)  # ids are ASCII


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.integers(-(2**61), 2**61), st.integers(0, 5), st.from_regex(r"[A-Z]{3}", fullmatch=True),
                 _ID, st.integers(0, 1000), _ID))
def test_cursor_round_trips(key):
    assert fc.decode_cursor(fc.encode_cursor(key)) == key


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*ZONES, "Europe/Berlin", "Pacific/Chatham", "America/Sao_Paulo"]),
       st.integers(-100 * 86_400_000_000, 700 * 86_400_000_000))
def test_local_days_are_the_time_zone_dates(tz, offset_us):
    now = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
    days = fc.LocalDays(ZoneInfo(tz), now)
    us = fc.epoch_us(now) + offset_us
    assert days.of(us) == fc.from_epoch_us(us).astimezone(ZoneInfo(tz)).date()
    # the database's arithmetic over the runs of equal-length days gives the same day
    if days.starts[0] <= us < days.starts[-1]:
        start, first, length = [seg for seg in days.segments if seg[0] <= us][-1]
        assert days.of_index(first + (us - start) // length) == days.of(us)
    assert len(days.segments) <= repo.MAX_DAY_SEGMENTS


def test_forecast_endpoint_pages_and_rejects_bad_input(runtime, clock):
    seller = make_user(runtime, email="s@example.com")
    buyer = make_user(runtime, email="b@example.com")
    for _ in range(2):
        make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000,) * 3)
    with runtime.unit_of_work() as ctx:
        token = accounts.issue_token(ctx, seller)
    client = TestClient(create_app(runtime))
    client.headers["Authorization"] = f"Bearer {token}"
    body = client.get("/v1/forecast", params={"limit": 4}).json()["seller"]
    assert body["line_count"] == 6 and len(body["lines"]) == 4 and body["next_cursor"]
    rest = client.get("/v1/forecast", params={"limit": 4, "after": body["next_cursor"]}).json()["seller"]
    assert len(rest["lines"]) == 2 and rest["next_cursor"] is None
    assert rest["totals"] == body["totals"]
    whole = client.get("/v1/forecast").json()["seller"]
    assert whole["lines"] == body["lines"] + rest["lines"]
    for bad in ({"limit": 0}, {"limit": fc.MAX_LINES + 1}, {"limit": "ten"}, {"after": "nope"},
                {"after": "x" * 401}, {"after": fc.encode_cursor((1, 99, "USD", "", 0, ""))[:-1] + "!"}):
        r = client.get("/v1/forecast", params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
