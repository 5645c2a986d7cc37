"""Change-order and extension queries. Locking reads re-read the row after the lock is granted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from milepost.changes.models import ChangeOrder, Extension
from milepost.changes.states import ChangeStatus, ExtensionStatus


def _ok_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 40


def get_change(session: Session, change_id: str, *, fresh: bool = False) -> ChangeOrder | None:
    if not _ok_id(change_id):
        return None
    query = select(ChangeOrder).where(ChangeOrder.id == change_id)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return session.scalars(query).first()


def changes_of(session: Session, order_id: str) -> Sequence[ChangeOrder]:
    return session.scalars(
        select(ChangeOrder).where(ChangeOrder.order_id == order_id).order_by(ChangeOrder.id)
    ).all()


def open_changes_of(session: Session, order_id: str) -> Sequence[ChangeOrder]:
    return session.scalars(
        select(ChangeOrder)
        .where(ChangeOrder.order_id == order_id, ChangeOrder.status == ChangeStatus.PROPOSED)
        .execution_options(populate_existing=True)
    ).all()


def get_extension(session: Session, extension_id: str, *, fresh: bool = False) -> Extension | None:
    if not _ok_id(extension_id):
        return None
    query = select(Extension).where(Extension.id == extension_id)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return session.scalars(query).first()


def extensions_of(session: Session, order_id: str) -> Sequence[Extension]:
    return session.scalars(
        select(Extension).where(Extension.order_id == order_id).order_by(Extension.id)
    ).all()


def open_extension_for(session: Session, milestone_id: str) -> Extension | None:
    return session.scalars(
        select(Extension).where(
            Extension.milestone_id == milestone_id, Extension.status == ExtensionStatus.REQUESTED
        )
    ).first()


def count_accepted(session: Session, order_ids: Sequence[str]) -> tuple[int, int]:
    """(accepted change orders, accepted extensions) over the given orders."""
    if not order_ids:
        return 0, 0
    changes = session.scalar(
        select(func.count()).select_from(ChangeOrder)
        .where(ChangeOrder.order_id.in_(order_ids), ChangeOrder.status == ChangeStatus.ACCEPTED)
    )
    extensions = session.scalar(
        select(func.count()).select_from(Extension)
        .where(Extension.order_id.in_(order_ids), Extension.status == ExtensionStatus.ACCEPTED)
    )
    return int(changes or 0), int(extensions or 0)
