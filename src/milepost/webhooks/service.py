"""Webhook endpoints (registered by operators) and the views of their deliveries."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from milepost.db import new_id
from milepost.errors import NotFound
from milepost.events.models import Event
from milepost.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx


def create_endpoint(ctx: Ctx, *, actor: User, url: str, event_types: Sequence[str] = ("*",)) -> WebhookEndpoint:
    """A new endpoint; it receives events recorded from now on (the outbox cursor starts at the end)."""
    last = ctx.session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0
    endpoint = WebhookEndpoint(
        id=new_id("whe"), url=url, secret="whsec_" + secrets.token_urlsafe(32),
        event_types=sorted(set(event_types)) or ["*"], active=True, created_by_id=actor.id,
        created_at=ctx.now, last_event_id=int(last),
    )
    ctx.session.add(endpoint)
    ctx.session.flush()
    return endpoint


def endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    return session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)).all()


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    for pattern in endpoint.event_types or ["*"]:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def endpoint_out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "event_types": list(endpoint.event_types or []),
            "active": endpoint.active, "created_at": endpoint.created_at, "secret": None}


def deliveries_page(
    session: Session, endpoint_id: str, *, before_id: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    if session.get(WebhookEndpoint, endpoint_id) is None:
        raise NotFound("webhook endpoint not found", code="webhook_not_found")
    query = (
        select(WebhookDelivery, Event)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    rows = session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()
    attempts: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for a in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d, _ in rows]))
            .order_by(WebhookAttempt.id)
        ):
            attempts.setdefault(a.delivery_id, []).append(
                {"attempted_at": a.attempted_at, "status_code": a.status_code, "error": a.error,
                 "duration_ms": a.duration_ms}
            )
    items = [
        {"id": str(d.id), "event_id": e.uid, "event_type": e.type, "status": d.status, "attempts": d.attempts,
         "next_attempt_at": d.next_attempt_at, "delivered_at": d.delivered_at, "created_at": d.created_at,
         "attempt_log": attempts.get(d.id, [])}
        for d, e in rows
    ]
    next_cursor = str(rows[-1][0].id) if len(rows) == limit else None
    return items, next_cursor
