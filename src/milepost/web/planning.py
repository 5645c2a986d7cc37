"""What the planning-and-change features add to the order page: the relationship panel, change
orders, extensions and reviews — read through the same services and repositories as the API.

Kept apart from `web.orders` so the routes in `web.changes` and the order page can both use it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milepost.accounts.models import User
from milepost.changes import repository as changes_repo
from milepost.changes.models import ChangeOrder, Extension
from milepost.orders.lifecycle import Role
from milepost.orders.models import Milestone, Order
from milepost.orders.states import MilestoneStatus, OrderStatus
from milepost.planning.history import recommend
from milepost.planning.relationships import history_between
from milepost.reviews import repository as reviews_repo

# Short titles for the plan lint's warning codes; the service's message is the explanation.
LINT_TITLES = {
    "missing_acceptance_criteria": "No acceptance criteria",
    "due_days_too_tight": "Tight for its revisions",
    "concentrated_amount": "Most of the money in one milestone",
    "single_milestone": "Everything in one milestone",
    "first_milestone_too_large": "Large first milestone",
    "few_milestones_for_new_pair": "Few milestones for a new pair",
    "long_for_amount": "Long for the amount",
}


def relationship_panel(session: Any, user: User, other: User | None) -> dict[str, Any] | None:
    """History between the two (on-time rate, revisions, reviews…) and the plan shape it suggests."""
    if other is None or other.id == user.id:
        return None
    history = history_between(session, user.id, other.id)
    data = history.as_dict()
    data["reviews"] = list(reversed(data["reviews"]))[:3]  # the latest few
    return {"counterparty": {"id": other.id, "name": other.name}, "history": data,
            "recommendation": recommend(history).as_dict()}


@dataclass
class ChangeView:
    """A change order as the order page shows it: its operations in words."""

    change: ChangeOrder
    proposer: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    can_answer: bool = False


def change_lines(operations: dict[str, Any], by_id: dict[str, Milestone]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for spec in operations.get("add") or []:
        lines.append({"kind": "add", "title": spec.get("title", ""), "amount": spec.get("amount"),
                      "due_days": spec.get("due_days")})
    for mid in operations.get("remove") or []:
        lines.append({"kind": "remove", "m": by_id.get(mid)})
    for upd in operations.get("update") or []:
        m = by_id.get(upd.get("milestone_id", ""))
        changed = {k: v for k, v in upd.items() if k != "milestone_id"}
        lines.append({"kind": "update", "m": m, "fields": changed})
    return lines


def order_extras(ctx: Any, order: Order, user: User, role: Role, milestones: list[Milestone],
                 people: dict[str, User | None]) -> dict[str, Any]:
    """Change orders, extensions, reviews and the relationship panel for one order page."""
    by_id = {m.id: m for m in milestones}
    changes = []
    for c in changes_repo.changes_of(ctx.session, order.id):
        if c.proposed_by_id not in people:
            people[c.proposed_by_id] = ctx.session.get(User, c.proposed_by_id)
        who = people.get(c.proposed_by_id)
        changes.append(ChangeView(
            change=c, proposer=who.name if who else c.proposed_by_role,
            lines=change_lines(c.operations, by_id),
            can_answer=c.status == "proposed" and c.proposed_by_id != user.id
            and role in (Role.BUYER, Role.SELLER),
        ))
    extensions: dict[str, list[Extension]] = {}
    for x in changes_repo.extensions_of(ctx.session, order.id):
        extensions.setdefault(x.milestone_id, []).append(x)
    reviews = list(reviews_repo.reviews_of(ctx.session, order.id))
    is_party = role in (Role.BUYER, Role.SELLER)
    other_id = order.seller_id if order.buyer_id == user.id else order.buyer_id
    other = people.get(other_id) or ctx.session.get(User, other_id)
    running = order.order_status in (OrderStatus.AGREED, OrderStatus.ACTIVE)
    return {
        "changes_open": [c for c in changes if c.change.status == "proposed"],
        "changes_past": [c for c in reversed(changes) if c.change.status != "proposed"],
        "can_propose_change": is_party and running and any(
            m.milestone_status in (MilestoneStatus.PENDING, MilestoneStatus.IN_PROGRESS) for m in milestones),
        "extensions": extensions,
        "reviews": reviews,
        "can_review": is_party and order.agreed_at is not None
        and order.order_status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED)
        and not any(r.author_id == user.id for r in reviews),
        "relationship": relationship_panel(ctx.session, user, other) if is_party else None,
        "other": other,
    }
