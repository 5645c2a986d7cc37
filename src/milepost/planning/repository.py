"""Queries behind relationship history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from milepost.disputes.models import Dispute
from milepost.orders.models import Delivery


def disputed_order_ids(session: Session, order_ids: Sequence[str]) -> set[str]:
    if not order_ids:
        return set()
    return set(session.scalars(select(Dispute.order_id).where(Dispute.order_id.in_(order_ids)).distinct()))


def first_delivery_at(session: Session, order_ids: Sequence[str]) -> dict[str, datetime]:
    """{milestone_id: when its first delivery came}."""
    if not order_ids:
        return {}
    rows = session.execute(
        select(Delivery.milestone_id, Delivery.created_at)
        .where(Delivery.order_id.in_(order_ids), Delivery.attempt == 1)
    ).all()
    return {mid: at for mid, at in rows}
