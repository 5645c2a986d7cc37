"""Review queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from milepost.reviews.models import Review


def reviews_of(session: Session, order_id: str) -> Sequence[Review]:
    return session.scalars(select(Review).where(Review.order_id == order_id).order_by(Review.created_at)).all()


def reviews_of_orders(session: Session, order_ids: Sequence[str]) -> Sequence[Review]:
    if not order_ids:
        return []
    return session.scalars(
        select(Review).where(Review.order_id.in_(order_ids)).order_by(Review.created_at)
    ).all()


def review_by(session: Session, order_id: str, author_id: str) -> Review | None:
    return session.scalars(
        select(Review).where(Review.order_id == order_id, Review.author_id == author_id)
    ).first()
