"""Disputes over HTTP: open one on a milestone, accept or counter, operator resolution."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from milepost.api import idempotency
from milepost.api.deps import RuntimeDep, UserDep
from milepost.api.errors import problem_responses
from milepost.api.orders import MilestoneId, OrderId
from milepost.api.schemas import DisputeCounter, DisputeCreate, DisputeOut, DisputeResolve
from milepost.api.views import dispute_out
from milepost.context import Ctx
from milepost.disputes import repository as disputes_repo
from milepost.disputes import service as disputes
from milepost.errors import NotFound
from milepost.orders import service as orders

router = APIRouter(tags=["disputes"])

DisputeId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
WRITE = problem_responses(401, 403, 404, 409, 422)


def _out(ctx: Ctx, dispute_id: str) -> dict[str, Any]:
    ctx.session.flush()
    dispute = disputes_repo.get_dispute(ctx.session, dispute_id)
    assert dispute is not None
    return dispute_out(ctx.session, dispute)


@router.post("/orders/{order_id}/milestones/{milestone_id}/disputes", status_code=201,
             response_model=DisputeOut, responses=WRITE,
             summary="Either party: dispute an in-progress or delivered milestone, proposing a split")
def open_dispute(order_id: OrderId, milestone_id: MilestoneId, body: DisputeCreate, request: Request,
                 runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        d = disputes.open_dispute(ctx, actor=user, order_id=order_id, milestone_id=milestone_id,
                                  reason=body.reason, seller_amount=body.seller_amount)
        return _out(ctx, d.id)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


@router.get("/disputes/{dispute_id}", response_model=DisputeOut, responses=problem_responses(401, 404, 422),
            summary="A dispute with every proposal")
def get_dispute(dispute_id: DisputeId, runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        dispute = disputes_repo.get_dispute(ctx.session, dispute_id)
        if dispute is None:
            raise NotFound("dispute not found", code="dispute_not_found")
        try:
            orders.load_order(ctx, dispute.order_id, user)
        except NotFound:
            raise NotFound("dispute not found", code="dispute_not_found") from None
        return dispute_out(ctx.session, dispute)


@router.post("/disputes/{dispute_id}/accept", response_model=DisputeOut, responses=WRITE,
             summary="The other party accepts the last proposal")
def accept(dispute_id: DisputeId, request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        disputes.accept(ctx, actor=user, dispute_id=dispute_id)
        return _out(ctx, dispute_id)

    return idempotency.run(request, runtime, principal=user.id, payload={}, action=action)


@router.post("/disputes/{dispute_id}/counter", response_model=DisputeOut, responses=WRITE,
             summary="The other party counters with another seller share")
def counter(dispute_id: DisputeId, body: DisputeCounter, request: Request, runtime: RuntimeDep,
            user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        disputes.counter(ctx, actor=user, dispute_id=dispute_id, seller_amount=body.seller_amount,
                         note=body.note)
        return _out(ctx, dispute_id)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action)


@router.post("/disputes/{dispute_id}/resolve", response_model=DisputeOut, responses=WRITE,
             summary="Operator: resolve with any split of the milestone's money")
def resolve(dispute_id: DisputeId, body: DisputeResolve, request: Request, runtime: RuntimeDep,
            user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        disputes.resolve(ctx, actor=user, dispute_id=dispute_id, seller_amount=body.seller_amount,
                         note=body.note)
        return _out(ctx, dispute_id)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action)
