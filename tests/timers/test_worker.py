"""Timers (SPEC §2.6): persisted, fired once, re-check state, and a failing one never blocks the rest."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from milepost.orders import service as orders
from milepost.timers import service as timers
from milepost.timers.models import Timer
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, make_order
from tests.orders.helpers import (
    available,
    deliver,
    deliver_and_approve,
    do,
    milestone_ids,
    people,
    statuses,
)


def all_timers(rt):
    with rt.reading() as ctx:
        return ctx.session.scalars(select(Timer).order_by(Timer.id)).all()


def test_scheduling_the_same_timer_twice_keeps_one(runtime, clock):
    for _ in range(2):
        with runtime.unit_of_work() as ctx:
            timers.schedule(ctx, kind="late", due_at=clock.now(), dedupe_key="late:x:1")
    assert len(all_timers(runtime)) == 1


def test_timers_fire_once_and_record_their_outcome(runtime, clock):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    deliver(runtime, p, order_id, milestone_ids(runtime, order_id)[0])
    clock.advance(timedelta(days=30))
    first = run_due(runtime)
    assert first.fired >= 2 and first.failed == 0
    assert run_due(runtime).fired == 0
    outcomes = {t.kind: t.outcome for t in all_timers(runtime)}
    assert outcomes["auto_approve"] == "applied"
    assert outcomes["late"].startswith("noop")  # it was delivered, so never late
    assert outcomes["clear_lot"] is None  # released when the timer fired: clears 7 days later
    clock.advance(timedelta(days=7))
    assert run_due(runtime).fired == 1
    assert all(t.fired_at is not None for t in all_timers(runtime))
    assert available(runtime, p.seller) == 9_000
    assert_invariants(runtime)


def test_timer_for_a_state_that_was_left_does_nothing(runtime, clock):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    mid = milestone_ids(runtime, order_id)[0]
    deliver_and_approve(runtime, p, order_id, mid)  # approved before the auto-approve timer is due
    clock.advance(timedelta(days=8))
    run_due(runtime)
    (auto,) = [t for t in all_timers(runtime) if t.kind == "auto_approve"]
    assert auto.outcome.startswith("noop")
    assert statuses(runtime, order_id) == ("completed", ["approved"])
    assert available(runtime, p.seller) == 9_000
    assert_invariants(runtime)


def test_a_failing_timer_does_not_block_the_others(runtime, clock, monkeypatch):
    def boom(ctx, timer):
        raise RuntimeError("handler bug")

    monkeypatch.setitem(timers.HANDLERS, "boom", boom)
    import milepost.timers.handlers  # noqa: F401

    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    deliver_and_approve(runtime, p, order_id, milestone_ids(runtime, order_id)[0])
    with runtime.unit_of_work() as ctx:
        timers.schedule(ctx, kind="boom", due_at=clock.now(), dedupe_key="boom:1")
    clock.advance(timedelta(days=7))
    result = run_due(runtime)
    assert result.failed == 1
    assert available(runtime, p.seller) == 9_000  # the clear_lot timer behind it still fired
    (bad,) = [t for t in all_timers(runtime) if t.kind == "boom"]
    assert bad.fired_at is None and "handler bug" in (bad.outcome or "")
    assert bad.due_at > clock.now()  # retried later, not in a tight loop
    assert_invariants(runtime)


def test_revision_reschedules_lateness_for_the_new_due_date(runtime, clock):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    mid = milestone_ids(runtime, order_id)[0]
    clock.advance(timedelta(days=5))
    deliver(runtime, p, order_id, mid)
    clock.advance(timedelta(days=2))
    run_due(runtime)  # the first lateness timer fires while delivered: nothing
    do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=mid, reason="again")
    clock.advance(timedelta(days=4, seconds=1))  # new due date: +3 days, late a day after
    run_due(runtime)
    from tests.orders.helpers import events_of

    assert len(events_of(runtime, order_id, "milestone.late")) == 1


def test_idle_rounds_only_read_and_one_serve_worker_per_database_leads(runtime, clock):
    """An idle round is one read; with several in-process workers only the lock holder runs rounds."""
    from sqlalchemy import event

    from milepost.timers.worker import Leadership, round_once, work_pending

    assert not work_pending(runtime)
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(runtime.db.engine, "before_cursor_execute", capture)
    try:
        round_once(runtime)
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", capture)
    assert [s for s in statements if not s.startswith("BEGIN")] and all(
        s.startswith(("SELECT", "BEGIN DEFERRED")) for s in statements)

    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    deliver(runtime, p, order_id, milestone_ids(runtime, order_id)[0])  # schedules an auto-approve
    clock.advance(timedelta(days=30))
    assert work_pending(runtime)

    first, second = Leadership(runtime), Leadership(runtime)
    try:
        assert first.held()
        assert not second.held()
        first.release()
        second._rounds = 0  # retry now rather than after RETRY_ROUNDS rounds
        assert second.held()
    finally:
        first.release()
        second.release()
