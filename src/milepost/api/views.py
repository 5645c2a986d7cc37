"""Turning domain rows into the JSON shapes of SPEC §5.1 (the field names are the contract)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from milepost.accounts.models import User
from milepost.disputes import repository as disputes_repo
from milepost.disputes.models import Dispute
from milepost.orders import lifecycle
from milepost.orders import repository as orders_repo
from milepost.orders.models import Milestone, Order


def user_out(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "is_operator": user.is_operator,
            "created_at": user.created_at}


def users_by_id(session: Session, ids: set[str], *, known: Sequence[User] = ()) -> dict[str, User]:
    """The users with these ids: those given in `known` (e.g. the caller, loaded by authentication) or
    already in the session's identity map cost no query; one IN query loads the rest, if any."""
    found = {u.id: u for u in known if u.id in ids}
    for uid in ids - found.keys():
        user = session.identity_map.get(identity_key(User, uid))
        if user is not None:
            found[uid] = user  # type: ignore[assignment]
    missing = ids - found.keys()
    if missing:
        found.update((u.id, u) for u in session.scalars(select(User).where(User.id.in_(list(missing)))))
    return found


def party_out(user: User | None, user_id: str) -> dict[str, Any]:
    if user is None:
        return {"id": user_id, "name": "", "email": ""}
    return {"id": user.id, "name": user.name, "email": user.email}


def milestone_out(m: Milestone, order: Order, now: datetime) -> dict[str, Any]:
    return {
        "id": m.id, "seq": m.seq, "title": m.title, "description": m.description,
        "acceptance_criteria": list(m.acceptance_criteria or []), "amount": m.amount,
        "due_days": m.due_days, "status": m.status, "revisions_allowed": m.revisions_allowed,
        "revisions_used": m.revisions_used, "started_at": m.started_at, "due_at": m.due_at,
        "delivered_at": m.delivered_at, "review_due_at": m.review_due_at, "approved_at": m.approved_at,
        "ended_at": m.ended_at, "funded": m.is_funded, "funded_amount": m.funded_amount,
        "released_amount": m.released_amount, "refunded_amount": m.refunded_amount,
        "in_escrow_amount": m.in_escrow_amount,
        "is_late": lifecycle.is_late(m.milestone_status, m.due_at, now, order.terms),
    }


def terms_out(order: Order) -> dict[str, Any]:
    terms = order.terms.as_dict()
    terms.pop("extension_silence_hours", None)
    return terms


def order_summary(
    order: Order, milestones: Sequence[Milestone], users: dict[str, User], *, viewer: User, now: datetime
) -> dict[str, Any]:
    role = lifecycle.role_of(viewer.id, buyer_id=order.buyer_id, seller_id=order.seller_id)
    return {
        "id": order.id, "status": order.status,
        "buyer": party_out(users.get(order.buyer_id), order.buyer_id),
        "seller": party_out(users.get(order.seller_id), order.seller_id),
        "your_role": str(role) if role else "operator",
        "title": order.title, "brief": order.brief, "currency": order.currency,
        "terms": terms_out(order), "plan_version": order.plan_version,
        "proposed_by": order.proposed_by_id, "total_amount": order.total_amount,
        "milestones": [milestone_out(m, order, now) for m in milestones],
        "created_at": order.created_at, "agreed_at": order.agreed_at, "ended_at": order.ended_at,
    }


def dispute_out(session: Session, dispute: Dispute) -> dict[str, Any]:
    return {
        "id": dispute.id, "order_id": dispute.order_id, "milestone_id": dispute.milestone_id,
        "status": dispute.status, "reason": dispute.reason, "opened_by": dispute.opened_by_id,
        "opened_at": dispute.opened_at, "escalated_at": dispute.escalated_at,
        "resolved_at": dispute.resolved_at, "resolved_seller_amount": dispute.resolved_seller_amount,
        "resolved_how": dispute.resolved_how,
        "proposals": [
            {"id": p.id, "seq": p.seq, "proposed_by": p.proposed_by_id, "role": p.role,
             "seller_amount": p.seller_amount, "note": p.note, "created_at": p.created_at}
            for p in disputes_repo.proposals_of(session, dispute.id)
        ],
    }


def order_detail(
    session: Session, order: Order, *, viewer: User, now: datetime, created: bool = False
) -> dict[str, Any]:
    """The full order. `created`: the order was proposed in this very transaction (POST /v1/orders), so
    its milestones and its one plan version are the objects `_write_plan` just flushed (kept in
    `session.info`) and it has no dispute, delivery or file yet: no re-read (7 queries before)."""
    from milepost.orders.service import WRITTEN_PLANS

    written = session.info.get(WRITTEN_PLANS, {}).get(order.id) if created else None
    if written is not None:
        version, milestones = written
    else:
        created = False
        milestones = orders_repo.milestones_of(session, order.id)
    users = users_by_id(session, {order.buyer_id, order.seller_id}, known=[viewer])
    data = order_summary(order, milestones, users, viewer=viewer, now=now)
    if created:
        data["disputes"], data["deliveries"] = [], []
        data["plan_versions"] = [_plan_version_out(version)]
        return data
    data["disputes"] = [dispute_out(session, d) for d in disputes_repo.disputes_of_order(session, order.id)]
    deliveries = orders_repo.deliveries_of(session, order.id)
    files: dict[str, list[dict[str, Any]]] = {}
    for f in orders_repo.files_of(session, [d.id for d in deliveries]):
        files.setdefault(f.delivery_id, []).append(
            {"id": f.id, "filename": f.filename, "content_type": f.content_type, "size_bytes": f.size_bytes,
             "sha256": f.sha256, "url": f"/v1/orders/{order.id}/files/{f.id}"}
        )
    data["deliveries"] = [
        {"id": d.id, "milestone_id": d.milestone_id, "attempt": d.attempt, "message": d.message,
         "revision_reason": d.revision_reason, "created_at": d.created_at, "files": files.get(d.id, [])}
        for d in deliveries
    ]
    data["plan_versions"] = [_plan_version_out(p) for p in orders_repo.plan_versions(session, order.id)]
    return data


def _plan_version_out(p: Any) -> dict[str, Any]:
    return {"version": p.version, "proposed_by": p.proposed_by_id, "terms": p.terms, "milestones": p.milestones,
            "note": p.note, "created_at": p.created_at}
