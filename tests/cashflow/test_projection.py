"""The cash-flow read models (`cashflow.projection`, `cashflow.projector`): each forecast line kept
as two `now`-independent terms equals the line the forecast rules give at any `now`; the forecast
schedule and the escrow per order are rebuilt by migration 0004's backfill and kept by the listeners
through every command (every test that checks the ledger invariants also runs the audit's
`forecast_schedule` and `order_escrow` checks)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text

from milepost.cashflow import forecast as fc
from milepost.cashflow.models import OrderEscrow, ScheduleRow
from milepost.cashflow.projection import EXCLUDED, Expected, epoch_us, order_lines
from milepost.ledger.audit import run_audit
from milepost.orders.models import Order
from tests.factories import assert_invariants, make_order, make_user
from tests.orders.helpers import approve, deliver, deliver_and_approve, milestone_ids, people

START = datetime(2026, 11, 1, tzinfo=UTC)
STATUSES = ["pending", "in_progress", "delivered", "disputed", "approved", "resolved", "cancelled"]
moments = st.one_of(st.none(), st.integers(-60 * 86_400, 60 * 86_400).map(
    lambda s: START + timedelta(seconds=s, microseconds=7)))


@st.composite
def orders(draw):
    terms = dict(release=draw(st.sampled_from(["per_milestone", "on_completion"])), review_days=draw(st.integers(0, 9)),
                 clearance_days=draw(st.integers(0, 9)), dispute_negotiation_days=draw(st.integers(0, 9)),
                 seller_fee_bps=draw(st.sampled_from([0, 250, 1000])), late_grace_hours=draw(st.sampled_from([0, 24])))
    milestones = []
    for seq in range(1, draw(st.integers(1, 6)) + 1):
        status = draw(st.sampled_from(STATUSES))
        amount = draw(st.sampled_from([1_000, 10_001]))
        funded = draw(st.sampled_from([0, amount]))
        released = draw(st.sampled_from([0, funded // 3]))
        milestones.append(fc.MilestoneInput(
            order_id="o", order_title="", currency="USD", milestone_id=f"m{seq}", seq=seq, title="", status=status,
            amount=amount, due_days=draw(st.integers(0, 20)), funded_amount=funded, released_amount=released,
            held_for_seller_amount=0 if status == "cancelled" else draw(st.sampled_from([0, (funded - released) // 2])),
            due_at=draw(moments), review_due_at=draw(moments),
            dispute_opened_at=draw(moments) if status == "disputed" else None, **terms))
    return terms, milestones


def _facts(m: fc.MilestoneInput) -> SimpleNamespace:
    return SimpleNamespace(id=m.milestone_id, seq=m.seq, status=m.status, due_days=m.due_days, due_at=m.due_at,
                           review_due_at=m.review_due_at, amount=m.amount, funded_amount=m.funded_amount,
                           released_amount=m.released_amount, refunded_amount=m.refunded_amount,
                           held_for_seller_amount=m.held_for_seller_amount)


@settings(max_examples=500, deadline=None)
@given(orders(), st.lists(st.integers(-90 * 86_400, 90 * 86_400), min_size=1, max_size=3))
def test_schedule_rows_equal_the_forecast_rules_at_any_now(order, offsets):
    terms, milestones = order
    opened = {m.milestone_id: m.dispute_opened_at for m in milestones if m.dispute_opened_at is not None}
    rows = order_lines(SimpleNamespace(status="active", **terms), [_facts(m) for m in reversed(milestones)], opened)
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    for offset in offsets:  # one set of rows serves every `now`
        now = START + timedelta(seconds=offset, microseconds=offset % 1_000)
        lines, excluded = fc.milestone_lines(milestones, now)
        dated = [r for r in rows if r.rank != EXCLUDED]
        assert [r.milestone_id for r in dated] == [line.milestone_id for line in lines]
        for row, line in zip(dated, lines, strict=True):
            assert Expected(row.base_us, row.lag_us).at(epoch_us(now)) == epoch_us(line.expected_at)
            assert (row.gross, row.fee, row.gross - row.fee) == (line.gross_amount, line.fee_amount, line.amount)
            assert fc.CERTAINTY_ORDER[row.rank] == line.certainty
            assert (row.late_after_us is not None and epoch_us(now) > row.late_after_us) == line.late
            assert row.funded == line.funded
        assert [(r.milestone_id, r.gross) for r in rows if r.rank == EXCLUDED] == [
            (e.milestone_id, e.gross_amount) for e in excluded]


def test_orders_not_agreed_or_active_have_no_rows():
    m = _facts(fc.MilestoneInput(order_id="o", order_title="", currency="USD", release="per_milestone",
                                 review_days=3, clearance_days=2, seller_fee_bps=0, milestone_id="m1", seq=1,
                                 title="", status="pending", amount=1_000, due_days=5))
    terms = dict(release="per_milestone", review_days=3, clearance_days=2, dispute_negotiation_days=7,
                 seller_fee_bps=0, late_grace_hours=24)
    assert order_lines(SimpleNamespace(status="active", **terms), [m])
    for status in ("proposed", "completed", "cancelled"):
        assert order_lines(SimpleNamespace(status=status, **terms), [m]) == []


def _schedule(runtime) -> list[tuple]:
    with runtime.reading() as ctx:
        return [tuple(r) for r in ctx.session.execute(
            select(ScheduleRow.__table__).order_by(ScheduleRow.milestone_id))]


def _escrow(runtime) -> dict[str, int]:
    with runtime.reading() as ctx:
        return dict(ctx.session.execute(select(OrderEscrow.order_id, OrderEscrow.amount)).tuples().all())


def test_a_command_rewrites_its_order_rows_once_and_a_rollback_leaves_them(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    first, *rest = milestone_ids(runtime, order_id)
    before, held = _schedule(runtime), _escrow(runtime)
    assert {r[0] for r in before} == {first, *rest}
    deliver_and_approve(runtime, p, order_id, first)
    after = _schedule(runtime)
    assert {r[0] for r in after} == set(rest)  # the approved milestone's money is in a clearing lot now
    released = next(r for r in before if r[0] == first)[6]  # its gross: released out of escrow
    assert _escrow(runtime) == {order_id: held[order_id] - released}
    try:
        with runtime.unit_of_work() as ctx:
            ctx.session.get(Order, order_id).review_days += 5
            ctx.session.flush()
            raise RuntimeError("abandon the change")
    except RuntimeError:
        pass
    assert _schedule(runtime) == after
    assert_invariants(runtime)


def test_changes_read_back_in_the_same_transaction(runtime, clock):
    # The forecast read inside a write transaction sees that transaction's changes.
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    with runtime.unit_of_work() as ctx:
        ctx.session.get(Order, order_id).clearance_days += 10
        f = fc.seller_forecast(ctx.session, p.seller.id, now=ctx.now, all_lines=True)
    with runtime.reading() as ctx:
        assert fc.seller_forecast(ctx.session, p.seller.id, now=ctx.now, all_lines=True).lines == f.lines
    assert_invariants(runtime)


def test_migration_backfill_rebuilds_the_schedule(runtime):
    # Migration 0004 fills the table from existing orders with the same function: empty it on a
    # database with orders in several states, run its backfill, and the audit finds it current.
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    deliver_and_approve(runtime, p, order_id, milestone_ids(runtime, order_id)[0])
    make_order(runtime, buyer=make_user(runtime, email="b2@example.com"), seller=p.seller, funded=False)
    kept = _schedule(runtime)
    path = Path(__file__).resolve().parents[2] / "migrations/versions/20261126_0004_cashflow_read_models.py"
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    kept_escrow = _escrow(runtime)
    with runtime.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM forecast_schedule"))
        conn.execute(text("DELETE FROM order_escrow"))
    with runtime.reading() as ctx:
        failing = {c.name for c in run_audit(ctx.session).checks if not c.ok}
        assert failing == {"forecast_schedule", "order_escrow"}
        assert ctx.session.scalar(select(func.count()).select_from(ScheduleRow)) == 0
    with runtime.db.engine.begin() as conn:
        migration.backfill(conn)
    with runtime.reading() as ctx:
        assert all(c.ok for c in run_audit(ctx.session).checks)
    assert _schedule(runtime) == kept and kept
    assert _escrow(runtime) == kept_escrow and kept_escrow


def test_a_rolled_back_savepoint_leaves_the_rows_of_the_state_that_commits(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    before = _schedule(runtime)
    with runtime.unit_of_work() as ctx:
        order = ctx.session.get(Order, order_id)
        savepoint = ctx.session.begin_nested()
        order.clearance_days += 3
        fc.seller_forecast(ctx.session, p.seller.id, now=ctx.now)  # rows rewritten inside the savepoint
        savepoint.rollback()
    assert _schedule(runtime) == before
    with runtime.reading() as ctx:
        assert all(c.ok for c in run_audit(ctx.session).checks)


def _read_model_writes(runtime, fn) -> list[tuple[str, str]]:
    """(verb, table) of every statement `fn` sends to the read models' tables."""
    seen: list[tuple[str, str]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        words = statement.split()
        table = next((w for w in words[1:4] if w in ("forecast_schedule", "order_escrow")), None)
        if table and words[0] in ("INSERT", "DELETE", "UPDATE"):
            seen.append((words[0], table))

    event.listen(runtime.db.engine, "before_cursor_execute", record)
    try:
        fn()
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", record)
    return seen


def test_read_models_are_written_only_where_they_can_change(runtime):
    # A proposal has no lines and no rows to delete; accepting writes the lines; funding moves money;
    # a delivery moves none, so its escrow row stays; an approval rewrites both. (The audit after
    # them proves what was skipped was already right.)
    p = people(runtime)
    made: list[str] = []
    assert _read_model_writes(runtime, lambda: made.append(make_order(runtime, buyer=p.buyer, seller=p.seller))) == [
        ("DELETE", "forecast_schedule"), ("INSERT", "forecast_schedule"),  # accept
        ("DELETE", "forecast_schedule"), ("INSERT", "forecast_schedule"), ("INSERT", "order_escrow"),  # fund
    ]
    order_id, first = made[0], milestone_ids(runtime, made[0])[0]
    assert _read_model_writes(runtime, lambda: deliver(runtime, p, order_id, first)) == [
        ("DELETE", "forecast_schedule"), ("INSERT", "forecast_schedule")]
    assert _read_model_writes(runtime, lambda: approve(runtime, p, order_id, first)) == [
        ("DELETE", "forecast_schedule"), ("INSERT", "forecast_schedule"), ("INSERT", "order_escrow")]
    assert_invariants(runtime)


def test_rows_written_inside_a_rolled_back_savepoint_are_written_again_for_what_stays(runtime):
    # A change before the savepoint, the rows written inside it (a forecast read), the savepoint
    # rolled back: the rows must still show the change made before it.
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    with runtime.unit_of_work() as ctx:
        order = ctx.session.get(Order, order_id)
        order.clearance_days += 3  # stays
        savepoint = ctx.session.begin_nested()
        order.review_days += 1  # rolled back
        fc.seller_forecast(ctx.session, p.seller.id, now=ctx.now)
        savepoint.rollback()
    with runtime.reading() as ctx:
        assert all(c.ok for c in run_audit(ctx.session).checks)
