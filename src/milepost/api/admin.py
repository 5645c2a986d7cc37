"""Operator endpoints: the ledger audit and webhook endpoints with their deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from milepost.api import idempotency
from milepost.api.deps import OperatorDep, RuntimeDep
from milepost.api.errors import problem_responses
from milepost.api.schemas import (
    AuditOut,
    WebhookCreate,
    WebhookDeliveryPage,
    WebhookOut,
    WebhookPage,
)
from milepost.context import Ctx
from milepost.ledger.audit import run_audit
from milepost.webhooks import service as webhooks

router = APIRouter(tags=["operator"])

OP = problem_responses(401, 403, 422)


@router.get("/admin/audit", response_model=AuditOut, responses=problem_responses(401, 403),
            summary="Operator: check every ledger invariant (SPEC §2.5)")
def audit(runtime: RuntimeDep, user: OperatorDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        return run_audit(ctx.session).as_dict()


@router.post("/webhooks", status_code=201, response_model=WebhookOut, responses={**OP, **problem_responses(409)},
             summary="Operator: register a webhook endpoint (the signing secret is shown once)")
def create_webhook(body: WebhookCreate, request: Request, runtime: RuntimeDep, user: OperatorDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        endpoint = webhooks.create_endpoint(ctx, actor=user, url=body.url, event_types=body.event_types)
        return {**webhooks.endpoint_out(endpoint), "secret": endpoint.secret}

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


@router.get("/webhooks", response_model=WebhookPage, responses=OP, summary="Operator: webhook endpoints")
def list_webhooks(runtime: RuntimeDep, user: OperatorDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        return {"items": [webhooks.endpoint_out(e) for e in webhooks.endpoints(ctx.session)], "next_cursor": None}


@router.get("/webhooks/{webhook_id}/deliveries", response_model=WebhookDeliveryPage,
            responses=problem_responses(401, 403, 404, 422),
            summary="Operator: deliveries to an endpoint with every attempt, newest first")
def list_deliveries(
    webhook_id: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")],
    runtime: RuntimeDep,
    user: OperatorDep,
    cursor: Annotated[str | None, Query(min_length=1, max_length=18, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    with runtime.reading() as ctx:
        items, next_cursor = webhooks.deliveries_page(
            ctx.session, webhook_id, before_id=int(cursor) if cursor else None, limit=limit
        )
    return {"items": items, "next_cursor": next_cursor}
