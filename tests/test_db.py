"""The unit-of-work session (milepost.db.Session): queued Core inserts behave like the ORM's own writes.

Events and timers are queued and sent with the next flush; these tests hold that a queued row is
visible to the next query of the same transaction, committed with it, gone with a rollback, and
gone with a rolled-back savepoint while rows queued before it stay.
"""

from __future__ import annotations

from sqlalchemy import event, select

from milepost.events import service as events
from milepost.events.models import Event
from milepost.orders import service as orders
from tests.orders.helpers import deliver, do, events_of, fast_password_hashing, setup  # noqa: F401


def _types(rt):
    with rt.reading() as ctx:
        return list(ctx.session.scalars(select(Event.type).order_by(Event.id)))


def test_a_queued_row_is_seen_by_the_next_query_and_committed(runtime):
    with runtime.unit_of_work() as ctx:
        events.record(ctx, "test.first", order_id=None, actor=None, actor_role="system")
        events.record(ctx, "test.second", order_id=None, actor=None, actor_role="system")
        seen = list(ctx.session.scalars(select(Event.type).order_by(Event.id)))
    assert seen == ["test.first", "test.second"]
    assert _types(runtime) == ["test.first", "test.second"]


def test_a_rollback_drops_queued_rows(runtime):
    try:
        with runtime.unit_of_work() as ctx:
            events.record(ctx, "test.lost", order_id=None, actor=None, actor_role="system")
            raise RuntimeError("the command failed")
    except RuntimeError:
        pass
    with runtime.unit_of_work() as ctx:
        events.record(ctx, "test.kept", order_id=None, actor=None, actor_role="system")
    assert _types(runtime) == ["test.kept"]


def test_a_rolled_back_savepoint_drops_only_the_rows_queued_inside_it(runtime):
    with runtime.unit_of_work() as ctx:
        events.record(ctx, "test.before", order_id=None, actor=None, actor_role="system")
        savepoint = ctx.session.begin_nested()
        events.record(ctx, "test.inside", order_id=None, actor=None, actor_role="system")
        savepoint.rollback()
        events.record(ctx, "test.after", order_id=None, actor=None, actor_role="system")
    assert _types(runtime) == ["test.before", "test.after"]


def test_approve_writes_its_events_in_order_in_few_statements(runtime):
    """Approve: the order read (+ its milestones), transfer, postings, lot, two milestone updates,
    one INSERT each for its three events and two timers, and the order's rows of the cash-flow read
    models (its forecast schedule rewritten, its escrow upserted) — read from nothing: the projector
    uses the order and milestones the command locked. A statement count is not a timing; it guards
    the write path against sliding back to one INSERT per row (bench/README.md)."""
    p, order_id, (first, _second) = setup(runtime, amounts=(10_000, 20_000))
    deliver(runtime, p, order_id, first)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement.split(None, 3)[:3])

    event.listen(runtime.db.engine, "before_cursor_execute", count)
    try:
        do(runtime, orders.approve, actor=p.buyer, order_id=order_id, milestone_id=first)
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", count)
    assert [e["seq"] for e in events_of(runtime, order_id, "milestone.approved")] == [1]
    with runtime.reading() as ctx:
        last_three = list(ctx.session.scalars(
            select(Event.type).where(Event.order_id == order_id).order_by(Event.id.desc()).limit(3)))
    assert last_three[::-1] == ["milestone.approved", "transfer.release", "milestone.started"]
    inserts = sorted(s[2] for s in statements if s[0] == "INSERT")
    assert inserts == ["clearing_lots", "events", "forecast_schedule", "order_escrow", "postings", "timers",
                       "transfers"]
    assert [s[2] for s in statements if s[0] == "DELETE"] == ["forecast_schedule"]
    updates = [s for s in statements if s[0] == "UPDATE"]
    assert len(updates) == 2
    reads = [s for s in statements if s[0] == "SELECT"]
    assert len(reads) == (1 if runtime.db.dialect == "sqlite" else 2)
