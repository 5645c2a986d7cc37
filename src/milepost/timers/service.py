"""Scheduling timers, and firing those that fell due — each firing in its own transaction.

A timer re-checks the state when it fires: a timer for a state that was left does nothing. On
PostgreSQL any number of workers may run: each claims a timer with FOR UPDATE SKIP LOCKED, so every
timer fires exactly once; on SQLite writers are serialised by BEGIN IMMEDIATE.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from milepost.db import insert_later
from milepost.timers.models import Timer

if TYPE_CHECKING:
    from milepost.context import Ctx

# kind -> handler(ctx, timer) returning a short outcome ("applied", "noop: …").
Handler = Callable[["Ctx", Timer], str]
HANDLERS: dict[str, Handler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def schedule(
    ctx: Ctx,
    *,
    kind: str,
    due_at: datetime,
    dedupe_key: str,
    order_id: str | None = None,
    milestone_id: str | None = None,
    subject_id: str | None = None,
) -> None:
    """Persist a timer; scheduling the same dedupe_key again does nothing.

    The row is queued and sent with the session's next flush (milepost.db.Session): timers
    scheduled by one command go out as one statement, after the order they belong to.
    """
    insert_later(
        ctx.session,
        _schedule_statement(ctx.session.get_bind().dialect.name),
        {
            "kind": kind,
            "due_at": due_at,
            "dedupe_key": dedupe_key,
            "order_id": order_id,
            "milestone_id": milestone_id,
            "subject_id": subject_id,
            "created_at": ctx.now,
        },
    )


@functools.cache
def _schedule_statement(dialect: str) -> Insert:
    # Built once per dialect and executed with bound values: building the statement with
    # .values(...) per call cost more Python than the INSERT itself (bench/README.md).
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(Timer).on_conflict_do_nothing(index_elements=["dedupe_key"])


def claim_next_due(ctx: Ctx) -> Timer | None:
    """Lock the oldest due, unfired timer that no other worker holds."""
    query = (
        select(Timer)
        .where(Timer.fired_at.is_(None), Timer.due_at <= ctx.now)
        .order_by(Timer.due_at, Timer.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return ctx.session.scalars(query).first()


def fire(ctx: Ctx, timer: Timer) -> str:
    handler = HANDLERS.get(timer.kind)
    outcome = handler(ctx, timer) if handler else f"noop: no handler for {timer.kind}"
    timer.fired_at = ctx.now
    timer.outcome = outcome[:200]
    return outcome


def next_due_at(ctx: Ctx) -> datetime | None:
    return ctx.session.scalar(
        select(Timer.due_at).where(Timer.fired_at.is_(None)).order_by(Timer.due_at).limit(1)
    )
