"""Reviews: when an order ends — completed *or cancelled* — each party may rate the other once.

Cancelled orders can be reviewed too (users ask for it: a seller who never delivered, a buyer who
cancelled after the work was done). Only orders that got past agreement can be: a proposal that was
withdrawn never had work to review.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from milepost.db import new_id
from milepost.errors import Conflict, IllegalTransition, InvalidInput
from milepost.events import service as events
from milepost.orders import service as orders
from milepost.orders.lifecycle import Role
from milepost.orders.plan import text_problem
from milepost.orders.states import OrderStatus
from milepost.reviews import repository as repo
from milepost.reviews.models import Review

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx

MAX_REVIEW_TEXT = 5000
ENDED = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)


def leave_review(ctx: Ctx, *, actor: User, order_id: str, rating: int, text: str = "") -> Review:
    order, role = orders.load_order(ctx, order_id, actor, lock=True)
    orders.require_party(role, "review an order")
    problems = []
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        problems.append({"field": "rating", "message": "must be a whole number from 1 to 5"})
    if (why := text_problem(text or "", max_len=MAX_REVIEW_TEXT)) is not None:
        problems.append({"field": "text", "message": why})
    if problems:
        raise InvalidInput("the review is invalid", errors=problems)
    if order.order_status not in ENDED or order.agreed_at is None:
        raise IllegalTransition(
            "an order can be reviewed once it has ended (completed or cancelled after agreement); "
            f"this one is {order.status}", code="order_not_ended",
        )
    if repo.review_by(ctx.session, order.id, actor.id) is not None:
        raise Conflict("you have already reviewed this order", code="already_reviewed")
    review = Review(
        id=new_id("rev"), order_id=order.id, author_id=actor.id, author_role=str(role),
        subject_id=order.seller_id if role == Role.BUYER else order.buyer_id, rating=rating,
        text=(text or "").strip(), order_status=order.status, created_at=ctx.now,
    )
    ctx.session.add(review)
    try:
        with ctx.session.begin_nested():
            ctx.session.flush()
    except IntegrityError:  # a concurrent second review got there first
        raise Conflict("you have already reviewed this order", code="already_reviewed") from None
    events.record(ctx, "review.left", order_id=order.id, actor=actor, actor_role=role,
                  payload={"review_id": review.id, "rating": rating})
    return review


def reviews_of_order(ctx: Ctx, *, actor: User, order_id: str) -> list[Review]:
    order, _ = orders.load_order(ctx, order_id, actor)
    return list(repo.reviews_of(ctx.session, order.id))


def review_as_dict(review: Review) -> dict[str, Any]:
    return {"id": review.id, "order_id": review.order_id, "author": review.author_id,
            "author_role": review.author_role, "subject": review.subject_id, "rating": review.rating,
            "text": review.text, "order_status": review.order_status,
            "created_at": review.created_at.isoformat()}
