"""Reviews over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from milepost.api import idempotency
from milepost.api.deps import RuntimeDep, UserDep
from milepost.api.errors import problem_responses
from milepost.api.orders import OrderId
from milepost.api.schemas import Input, Int, Text
from milepost.context import Ctx
from milepost.reviews import service as reviews
from milepost.reviews.service import MAX_REVIEW_TEXT

router = APIRouter(tags=["reviews"])


class ReviewCreate(Input):
    rating: Int(1, 5)  # type: ignore[valid-type]
    text: Text(MAX_REVIEW_TEXT) = ""  # type: ignore[valid-type]


@router.post("/orders/{order_id}/reviews", status_code=201, responses=problem_responses(401, 403, 404, 409, 422),
             summary="Either party of an ended order (completed or cancelled): rate the other, once")
def leave_review(order_id: OrderId, body: ReviewCreate, request: Request, runtime: RuntimeDep,
                 user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        review = reviews.leave_review(ctx, actor=user, order_id=order_id, rating=body.rating, text=body.text)
        return reviews.review_as_dict(review)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


@router.get("/orders/{order_id}/reviews", responses=problem_responses(401, 404, 422),
            summary="The reviews of an order")
def list_reviews(order_id: OrderId, runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        return {"items": [reviews.review_as_dict(r) for r in reviews.reviews_of_order(ctx, actor=user,
                                                                                     order_id=order_id)]}
