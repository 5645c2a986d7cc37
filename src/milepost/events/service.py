"""Appending events to an order's timeline (and so to the webhook outbox), in the caller's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from milepost.db import insert_later, new_id
from milepost.events.models import Event

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx

# Nothing reads an event back in the command that records it, so events are queued and sent
# together, one multi-row INSERT per flush (milepost.db.Session), instead of as ORM objects.
_INSERT_EVENT = insert(Event)


def record(
    ctx: Ctx,
    type: str,
    *,
    order_id: str | None,
    actor: User | None,
    actor_role: str,
    milestone_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    insert_later(
        ctx.session,
        _INSERT_EVENT,
        {
            "uid": new_id("evt"),
            "type": type,
            "order_id": order_id,
            "milestone_id": milestone_id,
            "actor_id": actor.id if actor else None,
            "actor_role": actor_role,
            "payload": payload or {},
            "created_at": ctx.now,
        },
    )
