"""Keeps the cash-flow read models — the forecast schedule and the escrow per order
(`cashflow.models`) — current, in the transaction that changes what they derive from.

One choke point: the ORM session. An order's rows depend only on the order, its milestones and
their open disputes, and each of those changes through the ORM (commands load the rows, change
attributes, and the session flushes them). An `after_flush` listener notes every order with a new,
changed or deleted Order, Milestone or Dispute; before the transaction (or a savepoint) commits —
and before the forecast reads the table in the same transaction — `write_pending` recomputes the
rows of the noted orders from the session's objects and replaces theirs: one DELETE and one
multi-row INSERT of schedule rows, and an upsert (or delete) of the escrow row when money moved,
however many flushes the command made. Commands read an order's milestones after locking it
(`orders.repository.milestones_of`) and hand that list over (`hold_all_milestones`), so for them
the recomputation reads nothing. A rolled-back savepoint has every order written so far rewritten.

What it cannot see: rows changed by Core statements (`update(Milestone)…`) or raw SQL. Nothing in
the application writes orders, milestones or disputes that way (what it inserts through Core —
transfers, postings, lots, events, timers — is not an input of the schedule); code that does must
call `note_orders` itself. The audit (`stale_schedule`, `stale_escrow`) recomputes every order
and names any row that differs, is missing or should not exist.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import bindparam, delete, event, func, insert, inspect, orm, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from milepost.cashflow.models import OrderEscrow, ScheduleRow
from milepost.cashflow.projection import (
    MILESTONE_FIELDS,
    OPEN_ORDER_STATUSES,
    ORDER_FIELDS,
    Line,
    facts_of_rows,
    in_escrow,
    order_lines,
)
from milepost.clock import as_utc
from milepost.disputes.models import Dispute
from milepost.orders.models import Milestone, Order
from milepost.orders.states import MilestoneStatus

PENDING = "projector.pending_orders"  # session.info key: {order id: whether its escrow row too} to rewrite
HELD = "projector.milestones_by_order"  # session.info key: {order id: every milestone of it}
HELD_ORDERS = "projector.orders"  # session.info key: {order id: the order of a held list}
NEW_ORDERS = "projector.new_orders"  # session.info key: ids of orders inserted by this transaction
WRITTEN = "projector.written_orders"  # session.info key: ids of orders whose rows this transaction wrote
AUDIT_BATCH = 5_000
_TABLE = ScheduleRow.__table__
_DELETE = delete(_TABLE).where(_TABLE.c.order_id.in_(bindparam("order_ids", expanding=True)))
_INSERT = insert(_TABLE)
_ESCROW = OrderEscrow.__table__
_DELETE_ESCROW = delete(_ESCROW).where(_ESCROW.c.order_id.in_(bindparam("order_ids", expanding=True)))
_UPSERT_ESCROW = {
    name: (lambda stmt: stmt.on_conflict_do_update(
        index_elements=[_ESCROW.c.order_id], set_={"amount": stmt.excluded.amount}))(dialect.insert(_ESCROW))
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def hold_all_milestones(session: Session, order_id: str, milestones: list[Milestone]) -> None:
    """Record that `milestones` are all the order's milestones (a read after the order's lock: no
    other transaction adds one before this one ends). The list is kept — strong references, so the
    identity map cannot drop them, nor the order, which the session holds too — and followed
    through this session's inserts and deletes."""
    session.info.setdefault(HELD, {})[order_id] = list(milestones)
    order = session.identity_map.get(session.identity_key(Order, order_id))
    if order is not None:
        session.info.setdefault(HELD_ORDERS, {})[order_id] = order


def note_orders(session: Session, order_ids: Collection[str], *, money: bool = True) -> None:
    """Have these orders' rows rewritten before the transaction commits — their escrow rows too,
    unless `money` is False (no funded, released or refunded amount of theirs changed)."""
    pending: dict[str, bool] = session.info.setdefault(PENDING, {})
    for order_id in order_ids:
        pending[order_id] = pending.get(order_id, False) or money


_MONEY = ("funded_amount", "released_amount", "refunded_amount")


def _moves_money(m: Milestone, *, new: bool, deleted: bool) -> bool:
    if new:
        return in_escrow(m) != 0
    if deleted:
        return True
    state = inspect(m)
    return any(state.attrs[name].history.has_changes() for name in _MONEY)


@event.listens_for(orm.Session, "after_flush")
def _note_flushed_orders(session: Session, _flush_context: Any) -> None:
    # (in after_flush, new/dirty/deleted and the attributes' history still show what this flush wrote)
    order_ids: set[str] = set()
    money: set[str] = set()
    for objects, new, deleted in ((session.new, True, False), (session.dirty, False, False),
                                  (session.deleted, False, True)):
        for obj in objects:
            if isinstance(obj, Order):
                order_ids.add(obj.id)
                if new:  # no row of it can exist before this transaction writes one
                    session.info.setdefault(NEW_ORDERS, set()).add(obj.id)
                elif deleted:
                    money.add(obj.id)
            elif isinstance(obj, Milestone):
                order_ids.add(obj.order_id)
                if _moves_money(obj, new=new, deleted=deleted):
                    money.add(obj.order_id)
            elif isinstance(obj, Dispute):
                order_ids.add(obj.order_id)
    if not order_ids:
        return
    note_orders(session, order_ids - money, money=False)
    note_orders(session, money)
    held = session.info.get(HELD)
    if held:
        for obj in session.new:
            if isinstance(obj, Milestone) and obj.order_id in held and obj not in held[obj.order_id]:
                held[obj.order_id].append(obj)
        for obj in session.deleted:
            if isinstance(obj, Milestone) and obj.order_id in held:
                held[obj.order_id] = [m for m in held[obj.order_id] if m is not obj]


@event.listens_for(orm.Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(orm.Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    # After a rollback (even of a savepoint) the held lists may name rows that no longer exist. A
    # rolled-back savepoint also undid any rows written inside it while changes made before it stay:
    # every order written so far is rewritten again (rewriting an unchanged order's rows is harmless).
    session.info.pop(HELD, None)
    session.info.pop(HELD_ORDERS, None)
    note_orders(session, session.info.get(WRITTEN, ()))


@event.listens_for(orm.Session, "after_transaction_end")
def _forget_at_the_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the whole transaction committed or rolled back
        session.info.pop(PENDING, None)
        session.info.pop(NEW_ORDERS, None)
        session.info.pop(WRITTEN, None)
        session.info.pop(HELD, None)
        session.info.pop(HELD_ORDERS, None)


def write_pending(session: Session) -> None:
    """Flush, then replace the rows of every order noted since the last write by its recomputation
    (its escrow row only when its money moved; no DELETE for an order this transaction created)."""
    session.flush()
    pending: dict[str, bool] | None = session.info.pop(PENDING, None)
    if not pending:
        return
    wanted = sorted(pending)
    created: set[str] = session.info.get(NEW_ORDERS, set())
    loaded = _load(session, wanted)
    lines: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    empty: list[str] = []
    for order_id in wanted:
        order = loaded["orders"].get(order_id)
        milestones = loaded["milestones"].get(order_id, [])
        if order is not None:
            lines += (_row(order, line) for line in order_lines(order, milestones, loaded["opened"]))
        if pending[order_id]:
            amount = sum(in_escrow(m) for m in milestones) if order is not None else 0
            if amount:
                held.append(_escrow_row(order, amount))
            elif order_id not in created:
                empty.append(order_id)
    conn = session.connection()
    if stale := [order_id for order_id in wanted if order_id not in created]:
        conn.execute(_DELETE, {"order_ids": stale})
    if lines:
        conn.execute(_INSERT, lines)
    if held:
        conn.execute(_UPSERT_ESCROW[conn.dialect.name], held)
    if empty:
        conn.execute(_DELETE_ESCROW, {"order_ids": empty})
    created.difference_update(wanted)  # they have rows now
    session.info.setdefault(WRITTEN, set()).update(wanted)


def _load(session: Session, order_ids: list[str]) -> dict[str, Any]:
    """What the recomputation reads once for all the orders: orders, milestones, dispute openings."""
    # (imported here: the repository imports the models, which import this module)
    from milepost.cashflow.repository import disputed_deadlines

    held: dict[str, list[Milestone]] = session.info.get(HELD, {})
    with session.no_autoflush:
        held_orders = session.info.get(HELD_ORDERS, {})
        orders = {oid: o for oid in order_ids
                  if (o := held_orders.get(oid) or session.identity_map.get(session.identity_key(Order, oid)))}
        missing = [oid for oid in order_ids if oid not in orders]
        if missing:
            orders.update((o.id, o) for o in session.scalars(select(Order).where(Order.id.in_(missing))))
        by_order: dict[str, list[Milestone]] = {oid: held[oid] for oid in order_ids if oid in held}
        unheld = [oid for oid in order_ids if oid not in held and oid in orders]
        if unheld:
            for m in session.scalars(select(Milestone).where(Milestone.order_id.in_(unheld))):
                by_order.setdefault(m.order_id, []).append(m)
        disputed = [m.id for ms in by_order.values() for m in ms if m.status == MilestoneStatus.DISPUTED]
        opened = disputed_deadlines(session, disputed)
    return {"orders": orders, "milestones": by_order, "opened": opened}


def _row(order: Any, line: Line) -> dict[str, Any]:
    return {"order_id": order.id, "seller_id": order.seller_id, "currency": order.currency, **line._asdict()}


def _escrow_row(order: Any, amount: int) -> dict[str, Any]:
    return {"order_id": order.id, "seller_id": order.seller_id, "buyer_id": order.buyer_id,
            "currency": order.currency, "amount": amount}


# ---------------------------------------------------------------------------------------------
# Audit: the stored rows equal their recomputation
# ---------------------------------------------------------------------------------------------

_AUDIT_COLUMNS = (*(getattr(Order, f) for f in ORDER_FIELDS), *(getattr(Milestone, f) for f in MILESTONE_FIELDS))


def stale_schedule(session: Session) -> Iterator[str]:
    """A message for every forecast schedule row that differs from its recomputation, is missing,
    or should not exist. Streams: orders and rows are read in order id order and merged."""
    opened = {
        mid: as_utc(at)
        for mid, at in session.execute(
            select(Dispute.milestone_id, func.max(Dispute.opened_at))
            .where(Dispute.resolved_at.is_(None))
            .group_by(Dispute.milestone_id)
        )
    }
    bytewise = _bytewise(session)
    expected = session.execute(
        select(*_AUDIT_COLUMNS)
        .join(Milestone, Milestone.order_id == Order.id)
        .where(Order.status.in_(OPEN_ORDER_STATUSES))
        .order_by(bytewise(Order.id), Milestone.seq)
        .execution_options(yield_per=AUDIT_BATCH)
    )
    names = [c.name for c in _TABLE.c]
    stored = session.execute(
        select(*_TABLE.c).order_by(bytewise(_TABLE.c.order_id)).execution_options(yield_per=AUDIT_BATCH)
    )
    recomputed = ((order_id, _recompute(list(rows), opened)) for order_id, rows in groupby(expected, key=lambda r: r[0]))
    kept = ((order_id, {r.milestone_id: dict(zip(names, r, strict=True)) for r in rows})
            for order_id, rows in groupby(stored, key=lambda r: r.order_id))
    for order_id, want, have in _merge(recomputed, kept):
        for milestone_id in sorted((want or {}).keys() | (have or {}).keys()):
            w, h = (want or {}).get(milestone_id), (have or {}).get(milestone_id)
            if w != h:
                yield f"order {order_id} milestone {milestone_id}: forecast schedule row {h}, recomputed {w}"


def stale_escrow(session: Session) -> Iterator[str]:
    """A message for every order whose escrow row differs from the sum of its milestones' escrow."""
    bytewise = _bytewise(session)
    held = func.sum(Milestone.funded_amount - Milestone.released_amount - Milestone.refunded_amount)
    expected = session.execute(
        select(Order.id, Order.seller_id, Order.buyer_id, Order.currency, held)
        .join(Milestone, Milestone.order_id == Order.id)
        .group_by(Order.id, Order.seller_id, Order.buyer_id, Order.currency)
        .having(held != 0)
        .order_by(bytewise(Order.id))
        .execution_options(yield_per=AUDIT_BATCH)
    )
    stored = session.execute(
        select(_ESCROW.c.order_id, _ESCROW.c.seller_id, _ESCROW.c.buyer_id, _ESCROW.c.currency, _ESCROW.c.amount)
        .order_by(bytewise(_ESCROW.c.order_id))
        .execution_options(yield_per=AUDIT_BATCH)
    )
    want_rows = ((r[0], (r[1], r[2], r[3], int(r[4]))) for r in expected)
    have_rows = ((r[0], (r[1], r[2], r[3], int(r[4]))) for r in stored)
    for order_id, want, have in _merge(want_rows, have_rows):
        if want != have:
            yield f"order {order_id}: escrow row (seller, buyer, currency, amount) {have}, recomputed {want}"


def _bytewise(session: Session) -> Any:
    # Both sides of a merge sorted as Python compares str (ids are ASCII), not by the locale.
    pg = session.get_bind().dialect.name == "postgresql"
    return (lambda column: column.collate("C")) if pg else (lambda column: column)


def _merge(want: Iterator[tuple[str, Any]], have: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any, Any]]:
    """Two streams of (key, value) in key order, joined on the key: (key, wanted or None, had or None)."""
    w, h = next(want, None), next(have, None)
    while w is not None or h is not None:
        if h is None or (w is not None and w[0] < h[0]):
            yield w[0], w[1], None
            w = next(want, None)
        elif w is None or h[0] < w[0]:
            yield h[0], None, h[1]
            h = next(have, None)
        else:
            yield w[0], w[1], h[1]
            w, h = next(want, None), next(have, None)


def _recompute(rows: list[Any], opened: dict[str, datetime]) -> dict[str, dict[str, Any]]:
    order, facts = facts_of_rows(rows)
    return {line.milestone_id: _row(order, line) for line in order_lines(order, facts, opened)}
