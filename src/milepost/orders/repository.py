"""Order queries. Locking reads re-read the row (populate_existing) after the lock is granted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from milepost.orders.models import Delivery, DeliveryFile, Milestone, Order, PlanVersion

# The reads every command on an order starts with, built once: building a select and its cache key
# per call cost more Python than running it (bench/README.md, approvals).
_ORDER = select(Order).where(Order.id == bindparam("order_id"))
# Every command on an order serialises on the order row: milestones run in sequence and a command
# may touch several of them.
_LOCKED_ORDER = _ORDER.with_for_update().execution_options(populate_existing=True)
_MILESTONES = (
    select(Milestone)
    .where(Milestone.order_id == bindparam("order_id"))
    .order_by(Milestone.seq)
    .execution_options(populate_existing=True)
)
_ORDER_AND_MILESTONES = (
    select(Order, Milestone)
    .outerjoin(Milestone, Milestone.order_id == Order.id)
    .where(Order.id == bindparam("order_id"))
    .order_by(Milestone.seq)
    .execution_options(populate_existing=True)
)


def get_order(session: Session, order_id: str, *, lock: bool = False) -> Order | None:
    if not isinstance(order_id, str) or len(order_id) > 40:
        return None
    return session.scalars(_LOCKED_ORDER if lock else _ORDER, {"order_id": order_id}).first()


def locked_order_and_milestones(session: Session, order_id: str) -> tuple[Order | None, list[Milestone]]:
    """The order, locked, and its milestones in seq order, read after the lock.

    On SQLite the write transaction already holds the database's write lock (BEGIN IMMEDIATE), so
    one joined query reads both in one round trip. On PostgreSQL it stays two statements: in a
    joined `SELECT … FOR UPDATE` that waited for the lock, PostgreSQL re-checks only the locked row
    and keeps the milestone rows of its older snapshot (and cannot see milestones inserted by the
    transaction it waited for); the milestones must be read by a statement started after the lock.
    """
    if session.get_bind().dialect.name != "sqlite":
        order = get_order(session, order_id, lock=True)
        return order, (milestones_of(session, order.id) if order is not None else [])
    if not isinstance(order_id, str) or len(order_id) > 40:
        return None, []
    rows = session.execute(_ORDER_AND_MILESTONES, {"order_id": order_id}).all()
    if not rows:
        return None, []
    return rows[0][0], _holding_all(session, order_id, [m for _, m in rows if m is not None])


def milestones_of(session: Session, order_id: str) -> list[Milestone]:
    return _holding_all(session, order_id, list(session.scalars(_MILESTONES, {"order_id": order_id}).all()))


def _holding_all(session: Session, order_id: str, milestones: list[Milestone]) -> list[Milestone]:
    """Note that the session holds every milestone of the order (`cashflow.projector` then needs
    no query to recompute the order's forecast schedule rows)."""
    from milepost.cashflow.projector import hold_all_milestones

    hold_all_milestones(session, order_id, milestones)
    return milestones


def milestones_of_orders(session: Session, order_ids: Sequence[str]) -> dict[str, list[Milestone]]:
    result: dict[str, list[Milestone]] = {oid: [] for oid in order_ids}
    if not order_ids:
        return result
    for m in session.scalars(
        select(Milestone).where(Milestone.order_id.in_(order_ids)).order_by(Milestone.seq)
    ):
        result[m.order_id].append(m)
    return result


def plan_versions(session: Session, order_id: str) -> Sequence[PlanVersion]:
    return session.scalars(
        select(PlanVersion).where(PlanVersion.order_id == order_id).order_by(PlanVersion.version)
    ).all()


def deliveries_of(session: Session, order_id: str) -> Sequence[Delivery]:
    return session.scalars(
        select(Delivery).where(Delivery.order_id == order_id).order_by(Delivery.created_at, Delivery.attempt)
    ).all()


def files_of(session: Session, delivery_ids: Sequence[str]) -> Sequence[DeliveryFile]:
    if not delivery_ids:
        return []
    return session.scalars(
        select(DeliveryFile).where(DeliveryFile.delivery_id.in_(delivery_ids)).order_by(DeliveryFile.created_at)
    ).all()


def latest_delivery(session: Session, milestone_id: str) -> Delivery | None:
    return session.scalars(
        select(Delivery).where(Delivery.milestone_id == milestone_id).order_by(Delivery.attempt.desc()).limit(1)
    ).first()


def orders_for_user(
    session: Session,
    user_id: str,
    *,
    role: str | None = None,
    status: str | None = None,
    after_id: str | None = None,
    limit: int = 50,
) -> Sequence[Order]:
    """Orders the user is a party to, newest first (ids are time-ordered), for cursor pagination."""
    if role == "buyer":
        who = Order.buyer_id == user_id
    elif role == "seller":
        who = Order.seller_id == user_id
    else:
        who = or_(Order.buyer_id == user_id, Order.seller_id == user_id)
    query = select(Order).where(who)
    if status:
        query = query.where(Order.status == status)
    if after_id:
        query = query.where(Order.id < after_id)
    return session.scalars(query.order_by(Order.id.desc()).limit(limit)).all()


def orders_between(session: Session, user_a: str, user_b: str) -> Sequence[Order]:
    return session.scalars(
        select(Order).where(
            or_(
                (Order.buyer_id == user_a) & (Order.seller_id == user_b),
                (Order.buyer_id == user_b) & (Order.seller_id == user_a),
            )
        ).order_by(Order.id)
    ).all()
