"""Orders over HTTP: propose, counter, accept, fund, deliver (JSON or multipart), review, cancel."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from milepost.api import idempotency
from milepost.api.deps import ReadCtx, RuntimeDep, UserDep, release_read
from milepost.api.errors import problem_responses
from milepost.api.schemas import (
    AcceptIn,
    CancelIn,
    DeliveryIn,
    EventPage,
    FundIn,
    OrderCreate,
    OrderOut,
    OrderPage,
    ProposalCreate,
    RevisionIn,
)
from milepost.api.views import order_detail, order_summary, users_by_id
from milepost.context import Ctx
from milepost.errors import InvalidInput, MilepostError
from milepost.events import repository as events_repo
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.states import OrderStatus

router = APIRouter(tags=["orders"])

OrderId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
MilestoneId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
FileId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]

WRITE = problem_responses(401, 403, 404, 409, 422)


def _detail(ctx: Ctx, order_id: str, user: Any) -> dict[str, Any]:
    ctx.session.flush()
    order, _ = orders.load_order(ctx, order_id, user)
    return order_detail(ctx.session, order, viewer=user, now=ctx.now)


@router.post("/orders", status_code=201, response_model=OrderOut, responses=WRITE,
             summary="Propose an order (as buyer or seller) to a registered counterparty")
def create_order(body: OrderCreate, request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        order = orders.propose(
            ctx, actor=user, role=body.role, counterparty_email=body.counterparty_email, title=body.title,
            brief=body.brief, currency=body.currency,
            terms=body.terms.model_dump(exclude_none=True) if body.terms else None,
            milestones=[m.model_dump(exclude_none=True) for m in body.milestones],
        )
        ctx.session.flush()
        # built from the objects just created: no re-read (7 queries before)
        return order_detail(ctx.session, order, viewer=user, now=ctx.now, created=True)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


@router.post("/orders/{order_id}/proposals", status_code=201, response_model=OrderOut, responses=WRITE,
             summary="Counter with a new plan version (terms and/or milestones)")
def counter_order(order_id: OrderId, body: ProposalCreate, request: Request, runtime: RuntimeDep,
                  user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        orders.counter(
            ctx, actor=user, order_id=order_id,
            milestones=[m.model_dump(exclude_none=True) for m in body.milestones] if body.milestones else None,
            terms=body.terms.model_dump(exclude_none=True) if body.terms else None, note=body.note,
        )
        return _detail(ctx, order_id, user)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


@router.post("/orders/{order_id}/accept", response_model=OrderOut, responses=WRITE,
             summary="Accept the current plan version (the party who did not propose it)")
def accept_order(order_id: OrderId, body: AcceptIn, request: Request, runtime: RuntimeDep,
                 user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        orders.accept(ctx, actor=user, order_id=order_id, plan_version=body.plan_version)
        return _detail(ctx, order_id, user)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action)


@router.post("/orders/{order_id}/fund", response_model=OrderOut, responses=WRITE,
             summary="Buyer: pay into escrow (the whole order if upfront, else the next or chosen milestones)")
def fund_order(order_id: OrderId, request: Request, runtime: RuntimeDep, user: UserDep,
               body: FundIn | None = None) -> Response:
    body = body or FundIn()

    def action(ctx: Ctx) -> dict[str, Any]:
        orders.fund(ctx, actor=user, order_id=order_id, milestone_ids=body.milestone_ids)
        return _detail(ctx, order_id, user)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action)


_DELIVERY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DeliveryIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {"type": "string", "minLength": 1, "maxLength": 10000},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                  "maxItems": 20},
                    },
                }
            },
        },
    }
}
MAX_FILES = 20
_delivery_adapter = TypeAdapter(DeliveryIn)


async def _read_delivery(request: Request, limit: int) -> tuple[str, list[orders.UploadedFile], Any]:
    """The delivery message and files, from JSON or multipart; 413 beyond the upload limit."""
    content_type = request.headers.get("content-type", "").lower()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + 64 * 1024:
        raise TooLarge(limit)
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=MAX_FILES, max_fields=10, max_part_size=64 * 1024)
        except MilepostError:
            raise
        except Exception:
            raise InvalidInput("the multipart body could not be read",
                               errors=[{"field": "body", "message": "is not valid multipart/form-data"}]) from None
        try:
            message = form.get("message")
            if not isinstance(message, str):
                raise InvalidInput("message is required",
                                   errors=[{"field": "message", "message": "is required (a text field)"}])
            body = _delivery_adapter.validate_python({"message": message})
            files: list[orders.UploadedFile] = []
            total = 0
            for name, value in form.multi_items():
                if name == "message":
                    continue
                if name != "files" or not isinstance(value, UploadFile):
                    raise InvalidInput(f"unexpected form field {name[:50]!r}",
                                       errors=[{"field": name[:50], "message": "unexpected field; send 'message' "
                                                "and 'files'"}])
                data = await value.read(limit + 1)
                total += len(data)
                if total > limit:
                    raise TooLarge(limit)
                files.append(orders.UploadedFile(filename=value.filename or "file",
                                                 content_type=value.content_type or "application/octet-stream",
                                                 data=data))
        except ValidationError as exc:
            raise _invalid(exc) from None
        finally:
            await form.close()
        payload = {"message": body.message,
                   "files": [{"name": f.filename, "sha256": _sha(f.data)} for f in files]}
        return body.message, files, payload
    raw = await request.body()
    if len(raw) > limit:
        raise TooLarge(limit)
    try:
        body = _delivery_adapter.validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc) from None
    return body.message, [], {"message": body.message}


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _invalid(exc: ValidationError) -> InvalidInput:
    from milepost.api.errors import validation_problems

    problems = validation_problems(exc.errors())
    return InvalidInput("the delivery is invalid", errors=problems)


class TooLarge(MilepostError):
    code = "upload_too_large"
    status = 413
    title = "Upload too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"uploads are limited to {limit} bytes per delivery", limit_bytes=limit)


@router.post("/orders/{order_id}/milestones/{milestone_id}/deliveries", status_code=201,
             response_model=OrderOut, responses={**WRITE, **problem_responses(413)},
             openapi_extra=_DELIVERY_BODY,
             summary="Seller: deliver a milestone (JSON {message} or multipart with files)")
async def deliver(order_id: OrderId, milestone_id: MilestoneId, request: Request, runtime: RuntimeDep,
                  user: UserDep) -> Response:
    release_read(request)  # no pooled connection held while a (slow) upload streams in
    message, files, payload = await _read_delivery(request, runtime.settings.max_upload_bytes)

    def action(ctx: Ctx) -> dict[str, Any]:
        orders.deliver(ctx, actor=user, order_id=order_id, milestone_id=milestone_id, message=message,
                       files=files)
        return _detail(ctx, order_id, user)

    return await run_in_threadpool(
        idempotency.run, request, runtime, principal=user.id, payload=payload, action=action, status_code=201
    )


@router.post("/orders/{order_id}/milestones/{milestone_id}/approve", response_model=OrderOut, responses=WRITE,
             summary="Buyer: approve a delivered milestone (releases its money)")
def approve(order_id: OrderId, milestone_id: MilestoneId, request: Request, runtime: RuntimeDep,
            user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        orders.approve(ctx, actor=user, order_id=order_id, milestone_id=milestone_id)
        return _detail(ctx, order_id, user)

    return idempotency.run(request, runtime, principal=user.id, payload={}, action=action)


@router.post("/orders/{order_id}/milestones/{milestone_id}/revisions", response_model=OrderOut,
             responses=WRITE, summary="Buyer: ask for a revision of a delivered milestone")
def request_revision(order_id: OrderId, milestone_id: MilestoneId, body: RevisionIn, request: Request,
                     runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        orders.request_revision(ctx, actor=user, order_id=order_id, milestone_id=milestone_id,
                                reason=body.reason)
        return _detail(ctx, order_id, user)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action)


@router.post("/orders/{order_id}/cancel", response_model=OrderOut, responses=WRITE,
             summary="Either party: cancel the rest of the order (kill fee per the terms)")
def cancel(order_id: OrderId, body: CancelIn, request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        orders.cancel(ctx, actor=user, order_id=order_id, reason=body.reason)
        return _detail(ctx, order_id, user)

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action)


@router.get("/orders", response_model=OrderPage, responses=problem_responses(401, 422),
            summary="Orders I am a party to, newest first")
def list_orders(
    ctx: ReadCtx,
    user: UserDep,
    role: Literal["buyer", "seller"] | None = None,
    status: Annotated[OrderStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    rows = orders_repo.orders_for_user(ctx.session, user.id, role=role, status=status, after_id=cursor,
                                       limit=limit)
    milestones = orders_repo.milestones_of_orders(ctx.session, [o.id for o in rows])
    ids = {o.buyer_id for o in rows} | {o.seller_id for o in rows}
    users = users_by_id(ctx.session, ids, known=[user])
    items = [order_summary(o, milestones[o.id], users, viewer=user, now=ctx.now) for o in rows]
    return {"items": items, "next_cursor": rows[-1].id if len(rows) == limit else None}


@router.get("/orders/{order_id}", response_model=OrderOut, responses=problem_responses(401, 404, 422),
            summary="An order with its terms, plan, milestones, disputes and deliveries")
def get_order(order_id: OrderId, ctx: ReadCtx, user: UserDep) -> dict[str, Any]:
    order, _ = orders.load_order(ctx, order_id, user)
    return order_detail(ctx.session, order, viewer=user, now=ctx.now)


@router.get("/orders/{order_id}/events", response_model=EventPage, responses=problem_responses(401, 404, 422),
            summary="The order's timeline, oldest first")
def order_events(
    order_id: OrderId,
    ctx: ReadCtx,
    user: UserDep,
    cursor: Annotated[str | None, Query(min_length=1, max_length=18, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    order, _ = orders.load_order(ctx, order_id, user)
    rows = events_repo.order_events(ctx.session, order.id, after_id=int(cursor or 0), limit=limit)
    items = [
        {"id": e.uid, "type": e.type, "order_id": e.order_id, "milestone_id": e.milestone_id,
         "actor_id": e.actor_id, "actor_role": e.actor_role, "payload": e.payload, "created_at": e.created_at}
        for e in rows
    ]
    return {"items": items, "next_cursor": str(rows[-1].id) if len(rows) == limit else None}


@router.get(
    "/orders/{order_id}/files/{file_id}",
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "The file, as an attachment"},
               **problem_responses(401, 404, 422)},
    response_class=Response,
    summary="Download a delivery file (the order's parties only)",
)
def download_file(order_id: OrderId, file_id: FileId, ctx: ReadCtx, user: UserDep) -> Response:
    from milepost.files import safe_filename

    f, data = orders.delivery_file(ctx, actor=user, order_id=order_id, file_id=file_id)
    name = safe_filename(f.filename)
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Original-Content-Type": json.dumps(f.content_type)[1:-1][:100],
        },
    )
