"""Appending events to an order's timeline (and so to the webhook outbox), in the caller's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost.db import new_id
from milepost.events.models import Event

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx


def record(
    ctx: Ctx,
    type: str,
    *,
    order_id: str | None,
    actor: User | None,
    actor_role: str,
    milestone_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Event:
    event = Event(
        uid=new_id("evt"),
        type=type,
        order_id=order_id,
        milestone_id=milestone_id,
        actor_id=actor.id if actor else None,
        actor_role=actor_role,
        payload=payload or {},
        created_at=ctx.now,
    )
    ctx.session.add(event)
    return event
