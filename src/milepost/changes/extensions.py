"""Extensions: the seller asks for more days on the running milestone with a reason; the buyer
accepts or declines; silence for the order's `extension_silence_hours` accepts (a timer).

An accepted extension moves the milestone's `due_at` (and so its lateness) by the days asked; the
plan's `due_days` stay as agreed, so the plan history shows what was planned and the timeline what
was granted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from milepost.changes import repository as repo
from milepost.changes.models import Extension
from milepost.changes.states import ExtensionAction, ExtensionStatus
from milepost.db import new_id
from milepost.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from milepost.events import service as events
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.lifecycle import Role
from milepost.orders.models import Milestone, Order
from milepost.orders.plan import MAX_DESCRIPTION, text_problem
from milepost.orders.states import MilestoneStatus
from milepost.timers import service as timers

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx

MAX_EXTENSION_DAYS = 90
# An extension still means something while the milestone can be reworked; after that it lapses.
EXTENDABLE = (MilestoneStatus.IN_PROGRESS, MilestoneStatus.DELIVERED)


def _text(value: Any, field: str, *, required: bool) -> str:
    why = text_problem(value, max_len=MAX_DESCRIPTION, required=required)
    if why is not None:
        raise InvalidInput(f"{field} {why}", errors=[{"field": field, "message": why}])
    return str(value).strip()


def request_extension(
    ctx: Ctx, *, actor: User, order_id: str, milestone_id: str, days: int, reason: str
) -> Extension:
    order, role = orders.load_order(ctx, order_id, actor, lock=True)
    orders.require(role, Role.SELLER, "ask for an extension")
    problems = []
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_EXTENSION_DAYS:
        problems.append({"field": "days", "message": f"must be a whole number from 1 to {MAX_EXTENSION_DAYS}"})
    if (why := text_problem(reason, max_len=MAX_DESCRIPTION, required=True)) is not None:
        problems.append({"field": "reason", "message": why})
    if problems:
        raise InvalidInput("the extension request is invalid", errors=problems)
    m = orders.find_milestone(orders_repo.milestones_of(ctx.session, order.id), milestone_id)
    if m.milestone_status != MilestoneStatus.IN_PROGRESS:
        raise IllegalTransition(
            f"milestone #{m.seq} is {m.status.replace('_', ' ')}: only the milestone in progress can be "
            "extended", code=f"milestone_{m.status}",
        )
    if repo.open_extension_for(ctx.session, m.id) is not None:
        raise Conflict("an extension of this milestone is already waiting for the buyer's answer",
                       code="extension_pending")
    ext = Extension(
        id=new_id("ext"), order_id=order.id, milestone_id=m.id, requested_by_id=actor.id, days=days,
        reason=str(reason).strip(), status=ExtensionStatus.REQUESTED,
        respond_by_at=ctx.now + timedelta(hours=order.extension_silence_hours), created_at=ctx.now,
        decision_note="", due_at_before=m.due_at,
    )
    ctx.session.add(ext)
    timers.schedule(ctx, kind="extension_silence", due_at=ext.respond_by_at,
                    dedupe_key=f"extension_silence:{ext.id}", order_id=order.id, milestone_id=m.id,
                    subject_id=ext.id)
    events.record(ctx, "extension.requested", order_id=order.id, milestone_id=m.id, actor=actor,
                  actor_role=role, payload={"extension_id": ext.id, "seq": m.seq, "days": days,
                                            "reason": ext.reason,
                                            "respond_by_at": ext.respond_by_at.isoformat()})
    ctx.session.flush()
    return ext


def _grant(ctx: Ctx, order: Order, m: Milestone, ext: Extension, *, how: str, actor: User | None,
           role: str) -> None:
    ext.transition(ExtensionAction.ACCEPT)
    ext.decided_at = ctx.now
    ext.decided_how = how
    assert m.due_at is not None
    ext.due_at_before = m.due_at
    m.due_at = m.due_at + timedelta(days=ext.days)
    ext.due_at_after = m.due_at
    orders._schedule_late(ctx, order, m)  # the old late timer re-checks and does nothing
    events.record(ctx, "extension.accepted", order_id=order.id, milestone_id=m.id, actor=actor,
                  actor_role=role, payload={"extension_id": ext.id, "seq": m.seq, "days": ext.days,
                                            "how": how, "due_at": m.due_at.isoformat()})


def _load(ctx: Ctx, extension_id: str, actor: User) -> tuple[Extension, Order, Milestone, Role]:
    ext = repo.get_extension(ctx.session, extension_id)
    if ext is None:
        raise NotFound("extension request not found", code="extension_not_found")
    try:
        order, role = orders.load_order(ctx, ext.order_id, actor, lock=True)
    except NotFound:
        raise NotFound("extension request not found", code="extension_not_found") from None
    fresh = repo.get_extension(ctx.session, extension_id, fresh=True)
    assert fresh is not None
    m = orders.find_milestone(orders_repo.milestones_of(ctx.session, order.id), fresh.milestone_id)
    return fresh, order, m, role


def accept_extension(ctx: Ctx, *, actor: User, extension_id: str) -> Extension:
    ext, order, m, role = _load(ctx, extension_id, actor)
    orders.require(role, Role.BUYER, "accept an extension")
    if ExtensionStatus(ext.status) == ExtensionStatus.REQUESTED and m.milestone_status not in EXTENDABLE:
        raise IllegalTransition(f"milestone #{m.seq} is {m.status}: there is nothing left to extend",
                                code=f"milestone_{m.status}")
    _grant(ctx, order, m, ext, how="buyer", actor=actor, role=role)
    return ext


def decline_extension(ctx: Ctx, *, actor: User, extension_id: str, note: str = "") -> Extension:
    ext, order, m, role = _load(ctx, extension_id, actor)
    orders.require(role, Role.BUYER, "decline an extension")
    note = _text(note or "", "note", required=False)
    ext.transition(ExtensionAction.DECLINE)
    ext.decided_at = ctx.now
    ext.decided_how = "buyer"
    ext.decision_note = note
    events.record(ctx, "extension.declined", order_id=order.id, milestone_id=m.id, actor=actor,
                  actor_role=role, payload={"extension_id": ext.id, "seq": m.seq, "note": note})
    return ext


def accept_by_silence(ctx: Ctx, *, extension_id: str) -> str:
    """Timer: the buyer did not answer in time. Re-checks everything; a stale firing does nothing."""
    ext = repo.get_extension(ctx.session, extension_id)
    if ext is None:
        return "noop: extension gone"
    order = orders_repo.get_order(ctx.session, ext.order_id, lock=True)
    ext = repo.get_extension(ctx.session, extension_id, fresh=True)
    if order is None or ext is None:
        return "noop: order gone"
    if ext.status != ExtensionStatus.REQUESTED:
        return f"noop: extension {ext.status}"
    if ext.respond_by_at > ctx.now:
        return "noop: still waiting for the buyer"
    m = orders.find_milestone(orders_repo.milestones_of(ctx.session, order.id), ext.milestone_id)
    if m.milestone_status not in EXTENDABLE:
        ext.transition(ExtensionAction.LAPSE)
        ext.decided_at = ctx.now
        ext.decided_how = "system"
        events.record(ctx, "extension.lapsed", order_id=order.id, milestone_id=m.id, actor=None,
                      actor_role="system", payload={"extension_id": ext.id, "milestone_status": m.status})
        return f"noop: milestone {m.status}, extension lapsed"
    _grant(ctx, order, m, ext, how="silence", actor=None, role="system")
    return "applied"


def get_extension(ctx: Ctx, *, actor: User, extension_id: str) -> Extension:
    ext = repo.get_extension(ctx.session, extension_id)
    if ext is None:
        raise NotFound("extension request not found", code="extension_not_found")
    try:
        orders.load_order(ctx, ext.order_id, actor)
    except NotFound:
        raise NotFound("extension request not found", code="extension_not_found") from None
    return ext


def extensions_of_order(ctx: Ctx, *, actor: User, order_id: str) -> list[Extension]:
    order, _ = orders.load_order(ctx, order_id, actor)
    return list(repo.extensions_of(ctx.session, order.id))


def extension_as_dict(ext: Extension) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": ext.id, "order_id": ext.order_id, "milestone_id": ext.milestone_id, "days": ext.days,
        "reason": ext.reason, "status": ext.status, "respond_by_at": iso(ext.respond_by_at),
        "created_at": iso(ext.created_at), "decided_at": iso(ext.decided_at),
        "decided_how": ext.decided_how, "decision_note": ext.decision_note,
        "due_at_before": iso(ext.due_at_before), "due_at_after": iso(ext.due_at_after),
    }
