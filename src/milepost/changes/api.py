"""Change orders and extensions over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import Field

from milepost.api import idempotency
from milepost.api.deps import RuntimeDep, UserDep
from milepost.api.errors import problem_responses
from milepost.api.orders import MilestoneId, OrderId
from milepost.api.schemas import Amount, Id, Input, Int, MilestoneIn, Text
from milepost.changes import extensions
from milepost.changes import service as changes
from milepost.changes.extensions import MAX_EXTENSION_DAYS
from milepost.context import Ctx
from milepost.orders.plan import (
    MAX_CRITERIA,
    MAX_CRITERION,
    MAX_DESCRIPTION,
    MAX_DUE_DAYS,
    MAX_TITLE,
)

router = APIRouter(tags=["changes"])
WRITE = problem_responses(401, 403, 404, 409, 422)
ChangeId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
ExtensionId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


class MilestoneUpdate(Input):
    milestone_id: Id
    title: Text(MAX_TITLE, min_length=1) | None = None  # type: ignore[valid-type]
    description: Text(MAX_DESCRIPTION) | None = None  # type: ignore[valid-type]
    acceptance_criteria: Annotated[list[Text(MAX_CRITERION, min_length=1)], Field(max_length=MAX_CRITERIA)] | None = None  # type: ignore[valid-type]
    amount: Amount | None = None
    due_days: Int(1, MAX_DUE_DAYS) | None = None  # type: ignore[valid-type]
    revisions: Int(0, 10) | None = None  # type: ignore[valid-type]


class ChangeCreate(Input):
    reason: Text(MAX_DESCRIPTION, min_length=1)  # type: ignore[valid-type]
    add: Annotated[list[MilestoneIn], Field(max_length=20)] = []
    remove: Annotated[list[Id], Field(max_length=20)] = []
    update: Annotated[list[MilestoneUpdate], Field(max_length=20)] = []


class Answer(Input):
    note: Text(MAX_DESCRIPTION) = ""  # type: ignore[valid-type]


class ExtensionCreate(Input):
    days: Int(1, MAX_EXTENSION_DAYS)  # type: ignore[valid-type]
    reason: Text(MAX_DESCRIPTION, min_length=1)  # type: ignore[valid-type]


@router.post("/orders/{order_id}/changes", status_code=201, responses=WRITE,
             summary="Either party: propose a change of the agreed plan, with a reason")
def propose_change(order_id: OrderId, body: ChangeCreate, request: Request, runtime: RuntimeDep,
                   user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        change = changes.propose_change(
            ctx, actor=user, order_id=order_id, reason=body.reason,
            add=[m.model_dump(exclude_none=True) for m in body.add], remove=list(body.remove),
            update=[u.model_dump(exclude_none=True) for u in body.update],
        )
        return changes.change_as_dict(change)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


@router.get("/orders/{order_id}/changes", responses=problem_responses(401, 404, 422),
            summary="Every change order of an order")
def list_changes(order_id: OrderId, runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        items = changes.changes_of_order(ctx, actor=user, order_id=order_id)
        return {"items": [changes.change_as_dict(c) for c in items], "next_cursor": None}


@router.get("/changes/{change_id}", responses=problem_responses(401, 404, 422), summary="A change order")
def get_change(change_id: ChangeId, runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        return changes.change_as_dict(changes.get_change(ctx, actor=user, change_id=change_id))


@router.post("/changes/{change_id}/accept", responses=WRITE,
             summary="The other party accepts: a new plan version, escrow topped up or refunded")
def accept_change(change_id: ChangeId, request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        return changes.change_as_dict(changes.accept_change(ctx, actor=user, change_id=change_id))

    return idempotency.run(request, runtime, principal=user.id, payload={}, action=action)


@router.post("/changes/{change_id}/decline", responses=WRITE, summary="The other party declines")
def decline_change(change_id: ChangeId, request: Request, runtime: RuntimeDep, user: UserDep,
                   body: Answer | None = None) -> Response:
    note = body.note if body else ""

    def action(ctx: Ctx) -> dict[str, Any]:
        return changes.change_as_dict(changes.decline_change(ctx, actor=user, change_id=change_id, note=note))

    return idempotency.run(request, runtime, principal=user.id, payload={"note": note}, action=action)


@router.post("/orders/{order_id}/milestones/{milestone_id}/extensions", status_code=201, responses=WRITE,
             summary="Seller: ask for more days on the milestone in progress")
def request_extension(order_id: OrderId, milestone_id: MilestoneId, body: ExtensionCreate, request: Request,
                      runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        ext = extensions.request_extension(ctx, actor=user, order_id=order_id, milestone_id=milestone_id,
                                           days=body.days, reason=body.reason)
        return extensions.extension_as_dict(ext)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


@router.get("/orders/{order_id}/extensions", responses=problem_responses(401, 404, 422),
            summary="Every extension request of an order")
def list_extensions(order_id: OrderId, runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        items = extensions.extensions_of_order(ctx, actor=user, order_id=order_id)
        return {"items": [extensions.extension_as_dict(x) for x in items], "next_cursor": None}


@router.post("/extensions/{extension_id}/accept", responses=WRITE, summary="Buyer: grant the extension")
def accept_extension(extension_id: ExtensionId, request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        return extensions.extension_as_dict(
            extensions.accept_extension(ctx, actor=user, extension_id=extension_id))

    return idempotency.run(request, runtime, principal=user.id, payload={}, action=action)


@router.post("/extensions/{extension_id}/decline", responses=WRITE, summary="Buyer: refuse the extension")
def decline_extension(extension_id: ExtensionId, request: Request, runtime: RuntimeDep, user: UserDep,
                      body: Answer | None = None) -> Response:
    note = body.note if body else ""

    def action(ctx: Ctx) -> dict[str, Any]:
        return extensions.extension_as_dict(
            extensions.decline_extension(ctx, actor=user, extension_id=extension_id, note=note))

    return idempotency.run(request, runtime, principal=user.id, payload={"note": note}, action=action)
