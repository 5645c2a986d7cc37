"""Relationship history between two users, and the plan shape it recommends (SPEC §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost.accounts import service as accounts
from milepost.changes import repository as changes_repo
from milepost.clock import as_utc
from milepost.errors import InvalidInput, NotFound
from milepost.orders import repository as orders_repo
from milepost.orders.states import MilestoneStatus, OrderStatus
from milepost.orders.terms import resolve_terms
from milepost.planning import repository as repo
from milepost.planning.history import PairHistory, ReviewSummary, recommend
from milepost.planning.lint import lint_plan
from milepost.reviews import repository as reviews_repo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from milepost.accounts.models import User
    from milepost.context import Ctx


def history_between(session: Session, user_id: str, other_id: str) -> PairHistory:
    """Orders between the two that got past agreement (proposals never agreed don't count)."""
    orders = [o for o in orders_repo.orders_between(session, user_id, other_id) if o.agreed_at is not None]
    ids = [o.id for o in orders]
    disputed = repo.disputed_order_ids(session, ids)
    firsts = repo.first_delivery_at(session, ids)
    finished = revisions = delivered = on_time = 0
    for ms in orders_repo.milestones_of_orders(session, ids).values():
        for m in ms:
            if m.status in (MilestoneStatus.APPROVED, MilestoneStatus.RESOLVED):
                finished += 1
                revisions += m.revisions_used
            first = firsts.get(m.id)
            if first is not None and m.due_at is not None:
                delivered += 1
                # due_at already includes granted extensions: delivering by it is on time.
                on_time += as_utc(first) <= as_utc(m.due_at)
    changes, extensions = changes_repo.count_accepted(session, ids)
    reviews = tuple(
        ReviewSummary(order_id=r.order_id, author_id=r.author_id, author_role=r.author_role,
                      rating=r.rating, text=r.text, created_at=r.created_at.isoformat())
        for r in reviews_repo.reviews_of_orders(session, ids)
    )
    return PairHistory(
        orders_total=len(orders),
        orders_completed=sum(o.status == OrderStatus.COMPLETED for o in orders),
        orders_cancelled=sum(o.status == OrderStatus.CANCELLED for o in orders),
        orders_disputed=len(disputed),
        orders_open=sum(o.status in (OrderStatus.AGREED, OrderStatus.ACTIVE) for o in orders),
        milestones_finished=finished, revisions_used=revisions, milestones_delivered=delivered,
        milestones_on_time=on_time, extensions_granted=extensions, change_orders_accepted=changes,
        reviews=reviews,
    )


def _counterparty(ctx: Ctx, actor: User, email: object) -> User:
    try:
        normalized = accounts.normalize_email(email)
    except InvalidInput as exc:
        raise InvalidInput("counterparty_email is not an e-mail address",
                           errors=[{"field": "counterparty_email", "message": exc.message}]) from None
    other = accounts.find_by_email(ctx.session, normalized)
    if other is None or other.id == actor.id:
        raise NotFound("no other Milepost user has this e-mail address", code="user_not_found")
    return other


def relationship(ctx: Ctx, *, actor: User, counterparty_email: str) -> dict[str, Any]:
    """History with the counterparty and the recommended plan shape, for the plan builder."""
    other = _counterparty(ctx, actor, counterparty_email)
    history = history_between(ctx.session, actor.id, other.id)
    return {
        "counterparty": {"id": other.id, "name": other.name, "email": other.email},
        "history": history.as_dict(),
        "recommendation": recommend(history).as_dict(),
    }


def lint(
    ctx: Ctx, *, actor: User, currency: str, milestones: list[dict[str, Any]],
    counterparty_email: str | None = None, terms: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Warnings for a draft plan; with a known counterparty, judged against your history together.

    An unknown or empty counterparty is not an error here (the plan builder lints while typing): the
    plan is judged as for a new pair and `relationship` is null.
    """
    rel = None
    history = PairHistory()
    if counterparty_email:
        try:
            other = _counterparty(ctx, actor, counterparty_email)
        except (NotFound, InvalidInput):
            other = None
        if other is not None:
            history = history_between(ctx.session, actor.id, other.id)
            rel = {"counterparty": {"id": other.id, "name": other.name, "email": other.email},
                   "history": history.as_dict()}
    rec = recommend(history)
    resolved = resolve_terms(terms, ctx.settings.default_terms) if terms else ctx.settings.default_terms
    warnings = lint_plan(milestones, currency=currency, terms=resolved,
                         recommendation=rec,
                         min_milestone_major=ctx.settings.plan_limits.min_milestone_major)
    return {"warnings": [w.as_dict() for w in warnings], "relationship": rel,
            "recommendation": rec.as_dict()}
