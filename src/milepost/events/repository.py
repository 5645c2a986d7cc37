from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from milepost.events.models import Event


def order_events(
    session: Session, order_id: str, *, after_id: int = 0, limit: int = 100
) -> Sequence[Event]:
    query = (
        select(Event)
        .where(Event.order_id == order_id, Event.id > after_id)
        .order_by(Event.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def events_after(session: Session, after_id: int, *, limit: int = 500) -> Sequence[Event]:
    return session.scalars(select(Event).where(Event.id > after_id).order_by(Event.id).limit(limit)).all()
