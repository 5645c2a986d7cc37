"""Forecast rules: certainty classes, dates, fees, release modes, lateness, disputes, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from milepost.cashflow import forecast as fc
from milepost.cashflow.forecast import Certainty, LotInput, MilestoneInput
from milepost.disputes import service as disputes
from milepost.errors import InvalidInput
from milepost.timers.worker import run_due
from tests.cashflow.history import approve, deliver
from tests.factories import assert_invariants, get_order, make_order, make_user

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def ms(seq: int, status: str, *, amount: int = 10_000, release: str = "per_milestone", funded: bool = True,
       order: str = "o1", currency: str = "USD", **kw) -> MilestoneInput:
    return MilestoneInput(
        order_id=order, order_title=f"Order {order}", currency=currency, release=release, review_days=7,
        clearance_days=7, seller_fee_bps=1000, milestone_id=f"{order}-m{seq}", seq=seq, title=f"M{seq}",
        status=status, amount=amount, due_days=5, funded_amount=amount if funded else 0, **kw,
    )


def by_seq(forecast: fc.Forecast) -> dict[int | None, fc.ForecastLine]:
    return {line.seq: line for line in forecast.lines}


def test_per_milestone_release_dates_each_line_by_its_own_milestone():
    review_due = NOW + timedelta(days=2)
    due = NOW + timedelta(days=3)
    f = fc.build_forecast(now=NOW, milestones=[
        ms(1, "delivered", review_due_at=review_due, due_at=NOW - timedelta(days=1)),
        ms(2, "pending"),
        ms(3, "pending", funded=False),
    ])
    lines = by_seq(f)
    assert lines[1].certainty == Certainty.AWAITING_REVIEW
    assert lines[1].expected_at == review_due + timedelta(days=7)
    # #2 starts when #1 is expected approved, takes its due days + review + clearance.
    assert lines[2].certainty == Certainty.NOT_STARTED and lines[2].funded is True
    assert lines[2].expected_at == review_due + timedelta(days=5 + 7 + 7)
    assert lines[3].funded is False
    assert lines[3].expected_at == review_due + timedelta(days=5 + 7 + 5 + 7 + 7)
    # Net of the seller fee, floor rule.
    assert (lines[1].amount, lines[1].fee_amount, lines[1].gross_amount) == (9_000, 1_000, 10_000)

    f = fc.build_forecast(now=NOW, milestones=[ms(1, "in_progress", due_at=due, amount=10_001)])
    line = f.lines[0]
    assert line.certainty == Certainty.IN_PROGRESS and not line.late
    assert line.expected_at == due + timedelta(days=7 + 7)
    assert (line.amount, line.fee_amount) == (9_001, 1_000)


def test_on_completion_pushes_every_line_to_the_expected_completion():
    due = NOW + timedelta(days=3)
    f = fc.build_forecast(now=NOW, milestones=[
        ms(1, "approved", release="on_completion", held_for_seller_amount=10_000),
        ms(2, "in_progress", release="on_completion", due_at=due),
        ms(3, "pending", release="on_completion"),
    ])
    completion = due + timedelta(days=7) + timedelta(days=5 + 7)
    lines = by_seq(f)
    assert {line.expected_at for line in f.lines} == {completion + timedelta(days=7)}
    assert [lines[s].certainty for s in (1, 2, 3)] == [Certainty.HELD, Certainty.IN_PROGRESS, Certainty.NOT_STARTED]
    assert sum(line.amount for line in f.lines) == 27_000


def test_late_milestone_is_flagged_and_dated_from_now():
    f = fc.build_forecast(now=NOW, milestones=[ms(1, "in_progress", due_at=NOW - timedelta(hours=25))])
    assert f.lines[0].late
    assert f.lines[0].expected_at == NOW + timedelta(days=14)
    # Within the 24 h grace it is not late yet.
    f = fc.build_forecast(now=NOW, milestones=[ms(1, "in_progress", due_at=NOW - timedelta(hours=23))])
    assert not f.lines[0].late


def test_disputed_milestone_is_excluded_and_delays_the_ones_after_it():
    opened = NOW - timedelta(days=2)
    f = fc.build_forecast(now=NOW, milestones=[
        ms(1, "disputed", dispute_opened_at=opened), ms(2, "pending"),
    ])
    assert [line.seq for line in f.lines] == [2]
    assert [(e.seq, e.gross_amount, e.reason) for e in f.excluded] == [(1, 10_000, "disputed")]
    assert f.lines[0].expected_at == opened + timedelta(days=7) + timedelta(days=5 + 7 + 7)


def test_available_and_clearing_lines_and_totals_per_currency():
    lot = LotInput("lot1", "o1", "Order", "m1", 1, "M1", "EUR", 5_000, 500, 4_500, NOW + timedelta(days=3))
    f = fc.build_forecast(
        now=NOW, available={"USD": 1_234, "JPY": 0}, lots=[lot],
        milestones=[ms(1, "pending", order="o2", currency="JPY", amount=5_000)],
    )
    assert [(line.certainty, line.currency, line.amount) for line in f.lines] == [
        (Certainty.AVAILABLE, "USD", 1_234), (Certainty.CLEARING, "EUR", 4_500), (Certainty.NOT_STARTED, "JPY", 4_500),
    ]
    assert f.totals == {"EUR": {"clearing": 4_500}, "JPY": {"not_started": 4_500}, "USD": {"available": 1_234}}
    assert {(t.currency, t.amount) for t in f.monthly} == {("USD", 1_234), ("EUR", 4_500), ("JPY", 4_500)}


@pytest.mark.parametrize(
    ("at", "tz", "week", "month"),
    [
        (datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "UTC", "2026-W09", "2026-03"),  # Sunday night in UTC
        (datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "Asia/Tokyo", "2026-W10", "2026-03"),  # already Monday
        (datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "Asia/Tokyo", "2026-W05", "2026-02"),  # Feb 1 in Tokyo
        (datetime(2026, 2, 1, 3, 0, tzinfo=UTC), "America/New_York", "2026-W05", "2026-01"),  # still Jan 31
        (datetime(2026, 2, 1, 3, 0, tzinfo=UTC), "UTC", "2026-W05", "2026-02"),
        (datetime(2027, 1, 1, 0, 30, tzinfo=UTC), "America/Los_Angeles", "2026-W53", "2026-12"),  # ISO year
    ],
)
def test_weekly_and_monthly_totals_use_the_viewers_local_date(at, tz, week, month):
    lot = LotInput("lot1", "o1", "Order", "m1", 1, "M1", "USD", 1_000, 100, 900, at)
    f = fc.build_forecast(now=NOW, lots=[lot], tz=tz)
    assert [(w.period, w.amount) for w in f.weekly] == [(week, 900)]
    assert [(m.period, m.amount) for m in f.monthly] == [(month, 900)]
    starts = f.weekly[0].starts_on
    assert starts.weekday() == 0 and starts.isocalendar().week == int(week[-2:])


def test_unknown_time_zone_is_invalid_input():
    with pytest.raises(InvalidInput):
        fc.build_forecast(now=NOW, milestones=[], tz="Mars/Olympus")


def test_buyer_funding_schedule_per_milestone_and_upfront():
    due = NOW + timedelta(days=3)
    per = [
        ms(1, "in_progress", due_at=due, funding="per_milestone"),
        ms(2, "pending", funded=False, funding="per_milestone", buyer_fee_bps=250),
        ms(3, "pending", funded=False, funding="per_milestone"),
    ]
    upfront = [ms(1, "pending", order="o2", funded=False), ms(2, "pending", order="o2", funded=False)]
    schedule = fc.funding_schedule(per + upfront, NOW)
    got = {(f.order_id, f.seq): f for f in schedule}
    assert got[("o1", 2)].due_at == due + timedelta(days=7) and not got[("o1", 2)].due_now
    assert got[("o1", 2)].buyer_fee_amount == 250
    assert got[("o1", 3)].due_at == due + timedelta(days=7 + 5 + 7)
    assert got[("o2", 1)].due_now and got[("o2", 2)].due_at == NOW
    assert schedule == sorted(schedule, key=lambda f: (f.due_at, f.order_id, f.seq))


def test_seller_forecast_from_the_database_excludes_disputes_until_resolved(runtime, clock):
    buyer = make_user(runtime, email="b@example.com")
    seller = make_user(runtime, email="s@example.com")
    operator = make_user(runtime, email="op@example.com", operator=True)
    order_id = make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000, 20_000))
    _, milestones = get_order(runtime, order_id)
    with runtime.unit_of_work() as ctx:
        dispute = disputes.open_dispute(ctx, actor=buyer, order_id=order_id, milestone_id=milestones[0].id,
                                        reason="wrong", seller_amount=4_000)
    with runtime.reading() as ctx:
        f = fc.seller_forecast(ctx.session, seller.id, now=ctx.now)
    assert [line.seq for line in f.lines] == [2]
    assert [e.seq for e in f.excluded] == [1]
    with runtime.unit_of_work() as ctx:
        disputes.resolve(ctx, actor=operator, dispute_id=dispute.id, seller_amount=6_000)
    with runtime.reading() as ctx:
        f = fc.seller_forecast(ctx.session, seller.id, now=ctx.now)
    assert f.excluded == []
    clearing = [line for line in f.lines if line.certainty == Certainty.CLEARING]
    assert [(line.seq, line.amount, line.expected_at) for line in clearing] == [
        (1, 5_400, clock.now() + timedelta(days=7))
    ]
    # #2 started on resolution: in progress, due in 5 days.
    (second,) = [line for line in f.lines if line.seq == 2]
    assert second.certainty == Certainty.IN_PROGRESS
    assert second.expected_at == clock.now() + timedelta(days=5 + 7 + 7)
    deliver(runtime, seller, order_id, milestones[1].id)
    approve(runtime, buyer, order_id, milestones[1].id)
    clock.advance(timedelta(days=8))
    run_due(runtime)
    with runtime.reading() as ctx:
        f = fc.seller_forecast(ctx.session, seller.id, now=ctx.now)
    assert [(line.certainty, line.amount) for line in f.lines] == [(Certainty.AVAILABLE, 5_400 + 18_000)]
    assert_invariants(runtime)


def test_seller_forecast_on_completion_order_from_the_database(runtime, clock):
    buyer = make_user(runtime, email="b@example.com")
    seller = make_user(runtime, email="s@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000, 20_000),
                          terms={"release": "on_completion", "review_days": 3, "clearance_days": 2})
    _, milestones = get_order(runtime, order_id)
    deliver(runtime, seller, order_id, milestones[0].id)
    approve(runtime, buyer, order_id, milestones[0].id)
    with runtime.reading() as ctx:
        f = fc.seller_forecast(ctx.session, seller.id, now=ctx.now)
    completion = clock.now() + timedelta(days=5 + 3)
    assert [(line.seq, line.certainty, line.amount, line.expected_at) for line in f.lines] == [
        (1, Certainty.HELD, 9_000, completion + timedelta(days=2)),
        (2, Certainty.IN_PROGRESS, 18_000, completion + timedelta(days=2)),
    ]
    assert_invariants(runtime)
