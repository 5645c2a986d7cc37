"""Order use cases: propose, counter, accept, fund, deliver, revise, approve, cancel the rest.

Each function is one use case inside the caller's transaction. Commands that can move money lock the
order row first and re-read its milestones (lock, re-read, check, act); every state change writes
its transfers and its event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from milepost.accounts import service as accounts
from milepost.db import new_id
from milepost.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    MilepostError,
    NotFound,
)
from milepost.events import service as events
from milepost.ledger import postings
from milepost.ledger import service as ledger
from milepost.money import buyer_fee, is_known_currency
from milepost.orders import lifecycle
from milepost.orders import repository as repo
from milepost.orders.lifecycle import MilestoneView, Role
from milepost.orders.models import Delivery, DeliveryFile, Milestone, Order, PlanVersion
from milepost.orders.plan import (
    MAX_BRIEF,
    MAX_DESCRIPTION,
    MAX_TITLE,
    MilestoneSpec,
    text_problem,
    validate_plan,
)
from milepost.orders.states import (
    MilestoneAction,
    MilestoneStatus,
    OrderAction,
    OrderStatus,
    next_milestone_status,
    next_order_status,
)
from milepost.orders.terms import FundingMode, ReleaseMode, Terms, resolve_terms
from milepost.timers import service as timers

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx


# ---------------------------------------------------------------------------------------------
# Loading with authorization
# ---------------------------------------------------------------------------------------------


def load_order(ctx: Ctx, order_id: str, actor: User, *, lock: bool = False) -> tuple[Order, Role]:
    """The order and the actor's role in it; strangers get NotFound so existence never leaks."""
    return _party_check(repo.get_order(ctx.session, order_id, lock=lock), actor)


def _party_check(order: Order | None, actor: User) -> tuple[Order, Role]:
    role = lifecycle.role_of(actor.id, buyer_id=order.buyer_id, seller_id=order.seller_id) if order else None
    if order is None or (role is None and not actor.is_operator):
        raise NotFound("order not found", code="order_not_found")
    return order, role or Role.OPERATOR


def require(role: Role, wanted: Role, doing: str) -> None:
    if role != wanted:
        raise Forbidden(f"only the {wanted} can {doing}", code=f"{wanted}_only")


def require_party(role: Role, doing: str) -> None:
    if role not in (Role.BUYER, Role.SELLER):
        raise Forbidden(f"only the buyer or the seller can {doing}", code="parties_only")


def find_milestone(milestones: Sequence[Milestone], milestone_id: str) -> Milestone:
    for m in milestones:
        if m.id == milestone_id:
            return m
    raise NotFound("milestone not found in this order", code="milestone_not_found")


def _text(value: Any, field: str, *, max_len: int, required: bool) -> str:
    why = text_problem(value, max_len=max_len, required=required)
    if why is not None:
        raise InvalidInput(f"{field} {why}", errors=[{"field": field, "message": why}])
    return str(value).strip() if required else str(value)


# ---------------------------------------------------------------------------------------------
# Negotiation
# ---------------------------------------------------------------------------------------------


def _collect(problems: list[dict[str, str]], fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except InvalidInput as exc:
        problems.extend(exc.errors)
        return None


def propose(
    ctx: Ctx,
    *,
    actor: User,
    role: str,
    counterparty_email: str,
    title: str,
    brief: str = "",
    currency: str,
    terms: dict[str, Any] | None = None,
    milestones: list[dict[str, Any]],
) -> Order:
    problems: list[dict[str, str]] = []
    if role not in ("buyer", "seller"):
        problems.append({"field": "role", "message": "must be 'buyer' or 'seller'"})
    if (why := text_problem(title, max_len=MAX_TITLE, required=True)) is not None:
        problems.append({"field": "title", "message": why})
    if (why := text_problem(brief or "", max_len=MAX_BRIEF)) is not None:
        problems.append({"field": "brief", "message": why})
    if not is_known_currency(currency):
        problems.append({"field": "currency", "message": "must be an ISO 4217 currency code, e.g. USD"})
    counterparty = None
    email = _collect(problems, accounts.normalize_email, counterparty_email)
    if email is not None:
        counterparty = accounts.find_by_email(ctx.session, email)
        if counterparty is None:
            problems.append(
                {"field": "counterparty_email", "message": "no Milepost user has this e-mail address; "
                 "ask them to register first"}
            )
        elif counterparty.id == actor.id:
            problems.append({"field": "counterparty_email", "message": "you cannot contract with yourself"})
    resolved = _collect(problems, resolve_terms, terms, ctx.settings.default_terms)
    specs = _collect(
        problems,
        validate_plan,
        currency if is_known_currency(currency) else "USD",
        milestones,
        default_revisions=(resolved or ctx.settings.default_terms).revisions,
        limits=ctx.settings.plan_limits,
    )
    if problems:
        raise InvalidInput("the order is invalid", errors=problems)
    assert counterparty is not None and resolved is not None and specs is not None
    buyer, seller = (actor, counterparty) if role == "buyer" else (counterparty, actor)
    order = Order(
        id=new_id("ord"),
        buyer_id=buyer.id,
        seller_id=seller.id,
        title=title.strip(),
        brief=brief or "",
        currency=currency,
        status=OrderStatus.PROPOSED,
        plan_version=1,
        proposed_by_id=actor.id,
        total_amount=0,
        created_at=ctx.now,
    )
    order.set_terms(resolved)
    ctx.session.add(order)
    _write_plan(ctx, order, specs, resolved, actor, note="")
    events.record(
        ctx, "order.proposed", order_id=order.id, actor=actor, actor_role=role,
        payload={"plan_version": 1, "total_amount": order.total_amount, "currency": currency},
    )
    return order


def _write_plan(
    ctx: Ctx, order: Order, specs: list[MilestoneSpec], terms: Terms, actor: User, *, note: str
) -> None:
    """Record a plan version and make the order's milestones match it (nothing is funded yet)."""
    created = order in ctx.session.new  # a new order has no milestones to replace: no select/delete
    ctx.session.flush()
    if not created:
        for old in repo.milestones_of(ctx.session, order.id):
            ctx.session.delete(old)
        ctx.session.flush()
    version = PlanVersion(
        order_id=order.id,
        version=order.plan_version,
        proposed_by_id=actor.id,
        terms=terms.as_dict(),
        milestones=[s.as_dict() for s in specs],
        note=note,
        created_at=ctx.now,
    )
    ctx.session.add(version)
    milestones: list[Milestone] = []
    for seq, spec in enumerate(specs, start=1):
        milestones.append(
            Milestone(
                id=new_id("ms"),
                order_id=order.id,
                seq=seq,
                title=spec.title,
                description=spec.description,
                acceptance_criteria=list(spec.acceptance_criteria),
                amount=spec.amount,
                due_days=spec.due_days,
                revisions_allowed=spec.revisions,
                revisions_used=0,
                status=MilestoneStatus.PENDING,
            )
        )
    ctx.session.add_all(milestones)
    order.total_amount = sum(s.amount for s in specs)
    ctx.session.flush()
    # The plan just written, for a response built without re-reading it (`api.views.order_detail`).
    ctx.session.info.setdefault(WRITTEN_PLANS, {})[order.id] = (version, milestones)


WRITTEN_PLANS = "milepost.written_plans"  # session.info key: order id → (PlanVersion, [Milestone])


def counter(
    ctx: Ctx,
    *,
    actor: User,
    order_id: str,
    milestones: list[dict[str, Any]] | None = None,
    terms: dict[str, Any] | None = None,
    note: str = "",
) -> Order:
    """A new plan version from either party while the order is proposed; the other party answers."""
    order, role = load_order(ctx, order_id, actor, lock=True)
    require_party(role, "counter a proposal")
    next_order_status(order.order_status, OrderAction.COUNTER)
    note = _text(note or "", "note", max_len=MAX_DESCRIPTION, required=False)
    problems: list[dict[str, str]] = []
    resolved = _collect(problems, resolve_terms, terms, order.terms)
    if milestones is None:
        milestones = [
            {"title": m.title, "description": m.description,
             "acceptance_criteria": m.acceptance_criteria, "amount": m.amount,
             "due_days": m.due_days, "revisions": m.revisions_allowed}
            for m in repo.milestones_of(ctx.session, order.id)
        ]
    specs = _collect(
        problems, validate_plan, order.currency, milestones,
        default_revisions=(resolved or order.terms).revisions, limits=ctx.settings.plan_limits,
    )
    if problems:
        raise InvalidInput("the counter-proposal is invalid", errors=problems)
    order.transition(OrderAction.COUNTER)
    order.plan_version += 1
    order.proposed_by_id = actor.id
    order.set_terms(resolved)
    _write_plan(ctx, order, specs, resolved, actor, note=note)
    events.record(
        ctx, "order.countered", order_id=order.id, actor=actor, actor_role=role,
        payload={"plan_version": order.plan_version, "total_amount": order.total_amount, "note": note},
    )
    return order


def accept(ctx: Ctx, *, actor: User, order_id: str, plan_version: int) -> Order:
    order, role = load_order(ctx, order_id, actor, lock=True)
    require_party(role, "accept a proposal")
    next_order_status(order.order_status, OrderAction.ACCEPT)
    if order.proposed_by_id == actor.id:
        raise Conflict(
            "you proposed this plan version: the other party accepts or counters it",
            code="own_proposal",
        )
    if isinstance(plan_version, bool) or not isinstance(plan_version, int):
        raise InvalidInput(
            "plan_version must be the whole number of the version you accept",
            errors=[{"field": "plan_version", "message": "must be a whole number"}],
        )
    if plan_version != order.plan_version:
        raise Conflict(
            f"plan version {plan_version} is not the current one; version {order.plan_version} is "
            "— review it, then accept that version",
            code="stale_plan_version",
            current_plan_version=order.plan_version,
        )
    order.transition(OrderAction.ACCEPT)
    order.agreed_at = ctx.now
    events.record(
        ctx, "order.agreed", order_id=order.id, actor=actor, actor_role=role,
        payload={"plan_version": order.plan_version, "terms": order.terms.as_dict()},
    )
    return order


# ---------------------------------------------------------------------------------------------
# Funding and starting
# ---------------------------------------------------------------------------------------------


def fund(
    ctx: Ctx, *, actor: User, order_id: str, milestone_ids: list[str] | None = None
) -> list[Milestone]:
    """The buyer pays into escrow: the whole order (upfront) or chosen milestones (per_milestone)."""
    order, role = load_order(ctx, order_id, actor, lock=True)
    require(role, Role.BUYER, "fund an order")
    if order.order_status not in (OrderStatus.AGREED, OrderStatus.ACTIVE):
        raise IllegalTransition(
            f"cannot fund an order that is {order.status}: "
            + ("accept the plan first" if order.status == OrderStatus.PROPOSED else "it has ended"),
            code=f"order_{order.status}",
        )
    milestones = repo.milestones_of(ctx.session, order.id)
    unfunded = [m for m in milestones if m.status == MilestoneStatus.PENDING and not m.is_funded]
    if milestone_ids is not None and (
        not isinstance(milestone_ids, list) or not all(isinstance(mid, str) for mid in milestone_ids)
    ):
        raise InvalidInput(
            "milestone_ids must be a list of milestone ids",
            errors=[{"field": "milestone_ids", "message": "must be a list of milestone ids"}],
        )
    if milestone_ids:
        chosen = [find_milestone(milestones, mid) for mid in dict.fromkeys(milestone_ids)]
        for m in chosen:
            if m.is_funded:
                raise Conflict(f"milestone #{m.seq} is already funded", code="already_funded")
            if m.status != MilestoneStatus.PENDING:
                raise IllegalTransition(
                    f"milestone #{m.seq} is {m.status.replace('_', ' ')} and cannot be funded",
                    code=f"milestone_{m.status}",
                )
        if order.funding == FundingMode.UPFRONT and {m.id for m in chosen} != {m.id for m in unfunded}:
            raise InvalidInput(
                "this order is funded upfront: fund all its milestones at once (omit milestone_ids)",
                errors=[{"field": "milestone_ids", "message": "upfront orders are funded whole"}],
            )
    elif order.funding == FundingMode.UPFRONT:
        chosen = unfunded
    else:
        chosen = unfunded[:1]
    if not chosen:
        raise Conflict("every milestone of this order is already funded", code="already_funded")
    total = sum(m.amount + buyer_fee(m.amount, order.buyer_fee_bps) for m in chosen)
    reference = f"fund:{order.id}:" + ",".join(m.id for m in chosen)
    charge_ref = ctx.provider.charge(
        payer_id=order.buyer_id, amount=total, currency=order.currency, reference=reference
    )
    for m in chosen:
        fee = buyer_fee(m.amount, order.buyer_fee_bps)
        ledger.book(
            ctx,
            postings.fund(order_id=order.id, currency=order.currency, amount=m.amount, buyer_fee_amount=fee),
            key=f"fund:{m.id}",
            order_id=order.id,
            milestone_id=m.id,
            external_ref=charge_ref,
            memo=f"{order.title} — #{m.seq} {m.title}",
            actor=actor,
            actor_role=role,
        )
        m.funded_amount = m.amount
        m.buyer_fee_amount = fee
        m.funded_at = ctx.now
        events.record(
            ctx, "milestone.funded", order_id=order.id, milestone_id=m.id, actor=actor, actor_role=role,
            payload={"seq": m.seq, "amount": m.amount, "buyer_fee_amount": fee},
        )
    advance(ctx, order, milestones)
    return chosen


def _views(milestones: Sequence[Milestone]) -> list[MilestoneView]:
    return [
        MilestoneView(seq=m.seq, status=m.milestone_status, amount=m.amount, funded=m.is_funded, due_at=m.due_at)
        for m in milestones
    ]


def advance(ctx: Ctx, order: Order, milestones: Sequence[Milestone]) -> None:
    """Start the next milestone if it may start; finish the order if every milestone is done."""
    seq = lifecycle.next_to_start(order.order_status, _views(milestones))
    if seq is not None:
        _start(ctx, order, milestones[seq - 1])
    _finish_if_done(ctx, order, milestones)


def _start(ctx: Ctx, order: Order, m: Milestone) -> None:
    m.transition(MilestoneAction.START)
    m.started_at = ctx.now
    m.due_at = lifecycle.due_at_for_start(ctx.now, m.due_days)
    if order.order_status == OrderStatus.AGREED:
        order.transition(OrderAction.START)
    _schedule_late(ctx, order, m)
    events.record(
        ctx, "milestone.started", order_id=order.id, milestone_id=m.id, actor=None, actor_role="system",
        payload={"seq": m.seq, "due_at": m.due_at.isoformat()},
    )


def _schedule_late(ctx: Ctx, order: Order, m: Milestone) -> None:
    assert m.due_at is not None
    timers.schedule(
        ctx, kind="late", due_at=lifecycle.first_late_instant(m.due_at, order.terms),
        dedupe_key=f"late:{m.id}:{m.due_at.isoformat()}", order_id=order.id, milestone_id=m.id,
    )


def _finish_if_done(ctx: Ctx, order: Order, milestones: Sequence[Milestone]) -> None:
    if order.order_status not in (OrderStatus.AGREED, OrderStatus.ACTIVE):
        return
    outcome = lifecycle.order_outcome(
        [(m.milestone_status, m.released_amount + m.held_for_seller_amount > 0) for m in milestones]
    )
    if outcome is None:
        return
    # Release mode on_completion: everything owed to the seller leaves escrow together, now.
    for m in milestones:
        if m.held_for_seller_amount:
            held, m.held_for_seller_amount = m.held_for_seller_amount, 0
            ledger.release_to_seller(ctx, order=order, milestone=m, amount=held)
    order.transition(OrderAction.COMPLETE if outcome == OrderStatus.COMPLETED else OrderAction.CANCEL)
    order.ended_at = ctx.now
    events.record(
        ctx, f"order.{outcome}", order_id=order.id, actor=None, actor_role="system",
        payload={
            "paid_to_seller": sum(m.released_amount for m in milestones),
            "refunded": sum(m.refunded_amount for m in milestones),
        },
    )


def settle(
    ctx: Ctx, order: Order, m: Milestone, *, seller_amount: int, reason: str, actor_role: str = "system"
) -> None:
    """Pay a finished milestone's escrow out: `seller_amount` to the seller, the rest to the buyer.

    With release `per_milestone` the seller's part is released now; with `on_completion` it stays
    in escrow, owed, until the order ends.
    """
    in_escrow = m.in_escrow_amount
    if not 0 <= seller_amount <= in_escrow:
        raise Conflict("the seller's share exceeds the money in escrow", code="share_exceeds_escrow")
    if seller_amount:
        if order.release == ReleaseMode.PER_MILESTONE:
            ledger.release_to_seller(ctx, order=order, milestone=m, amount=seller_amount, actor_role=actor_role)
        else:
            m.held_for_seller_amount += seller_amount
    ledger.refund_to_buyer(
        ctx, order=order, milestone=m, amount=in_escrow - seller_amount, reason=reason, actor_role=actor_role
    )


# ---------------------------------------------------------------------------------------------
# Delivery and review
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


def deliver(
    ctx: Ctx,
    *,
    actor: User,
    order_id: str,
    milestone_id: str,
    message: str,
    files: Sequence[UploadedFile] = (),
) -> Delivery:
    from milepost.files import safe_filename

    order, role = load_order(ctx, order_id, actor, lock=True)
    require(role, Role.SELLER, "deliver a milestone")
    message = _text(message, "message", max_len=MAX_DESCRIPTION, required=True)
    m = find_milestone(repo.milestones_of(ctx.session, order.id), milestone_id)
    m.transition(MilestoneAction.DELIVER)
    m.deliveries_count += 1
    m.delivered_at = ctx.now
    m.review_due_at = lifecycle.review_due_at(ctx.now, order.terms)
    delivery = Delivery(
        id=new_id("dlv"), order_id=order.id, milestone_id=m.id, attempt=m.deliveries_count,
        message=message, delivered_by_id=actor.id, created_at=ctx.now,
    )
    ctx.session.add(delivery)
    for f in files:
        digest = ctx.files.put(f.data)
        ctx.session.add(
            DeliveryFile(
                id=new_id("fil"), delivery_id=delivery.id, filename=safe_filename(f.filename),
                content_type=(f.content_type or "application/octet-stream")[:100],
                size_bytes=len(f.data), sha256=digest, created_at=ctx.now,
            )
        )
    timers.schedule(
        ctx, kind="auto_approve", due_at=m.review_due_at,
        dedupe_key=f"auto_approve:{m.id}:{m.deliveries_count}", order_id=order.id,
        milestone_id=m.id, subject_id=str(m.deliveries_count),
    )
    events.record(
        ctx, "milestone.delivered", order_id=order.id, milestone_id=m.id, actor=actor, actor_role=role,
        payload={"seq": m.seq, "attempt": m.deliveries_count, "review_due_at": m.review_due_at.isoformat(),
                 "files": len(files)},
    )
    return delivery


def delivery_file(ctx: Ctx, *, actor: User, order_id: str, file_id: str) -> tuple[DeliveryFile, bytes]:
    """A delivery file and its bytes, for the order's buyer and seller only.

    Operators read orders to settle disputes, but the deliverables stay between the parties (the
    API contract says "downloadable only by the order's parties"); everyone else gets NotFound.
    """
    order, role = load_order(ctx, order_id, actor)
    deliveries = repo.deliveries_of(ctx.session, order.id)
    found = [f for f in repo.files_of(ctx.session, [d.id for d in deliveries]) if f.id == file_id]
    if not found or role not in (Role.BUYER, Role.SELLER):
        raise NotFound("file not found", code="file_not_found")
    try:
        data = ctx.files.read(found[0].sha256)
    except (OSError, ValueError):
        raise NotFound("the file's content is missing from storage", code="file_missing") from None
    return found[0], data


def request_revision(ctx: Ctx, *, actor: User, order_id: str, milestone_id: str, reason: str) -> Milestone:
    order, role = load_order(ctx, order_id, actor, lock=True)
    require(role, Role.BUYER, "request a revision")
    reason = _text(reason, "reason", max_len=MAX_DESCRIPTION, required=True)
    m = find_milestone(repo.milestones_of(ctx.session, order.id), milestone_id)
    next_milestone_status(m.milestone_status, MilestoneAction.REQUEST_REVISION)
    lifecycle.check_revision_allowed(m.revisions_used, m.revisions_allowed)
    m.transition(MilestoneAction.REQUEST_REVISION)
    m.revisions_used += 1
    assert m.due_at is not None
    m.due_at = lifecycle.due_at_after_revision(m.due_at, ctx.now, order.terms)
    m.review_due_at = None
    delivery = repo.latest_delivery(ctx.session, m.id)
    if delivery is not None:
        delivery.revision_reason = reason
    _schedule_late(ctx, order, m)
    events.record(
        ctx, "milestone.revision_requested", order_id=order.id, milestone_id=m.id, actor=actor,
        actor_role=role,
        payload={"seq": m.seq, "reason": reason, "revisions_used": m.revisions_used,
                 "revisions_allowed": m.revisions_allowed, "due_at": m.due_at.isoformat()},
    )
    return m


def approve(ctx: Ctx, *, actor: User, order_id: str, milestone_id: str) -> Milestone:
    found, milestones = repo.locked_order_and_milestones(ctx.session, order_id)
    order, role = _party_check(found, actor)
    require(role, Role.BUYER, "approve a milestone")
    m = find_milestone(milestones, milestone_id)
    _approve(ctx, order, milestones, m, action=MilestoneAction.APPROVE, actor=actor, role=role)
    return m


def _approve(
    ctx: Ctx, order: Order, milestones: Sequence[Milestone], m: Milestone, *,
    action: MilestoneAction, actor: User | None, role: str,
) -> None:
    m.transition(action)
    m.approved_at = ctx.now
    m.ended_at = ctx.now
    m.review_due_at = None
    events.record(
        ctx, "milestone.approved", order_id=order.id, milestone_id=m.id, actor=actor, actor_role=role,
        payload={"seq": m.seq, "amount": m.amount, "auto": action == MilestoneAction.AUTO_APPROVE},
    )
    settle(ctx, order, m, seller_amount=m.in_escrow_amount, reason="approved", actor_role=role)
    advance(ctx, order, milestones)


def auto_approve(ctx: Ctx, *, order_id: str, milestone_id: str, attempt: int) -> str:
    """Timer: the review window of delivery `attempt` ran out with no answer."""
    order = repo.get_order(ctx.session, order_id, lock=True)
    if order is None:
        return "noop: order gone"
    milestones = repo.milestones_of(ctx.session, order.id)
    m = find_milestone(milestones, milestone_id)
    if m.milestone_status != MilestoneStatus.DELIVERED or m.deliveries_count != attempt:
        return f"noop: milestone is {m.status}"
    if m.review_due_at is None or m.review_due_at > ctx.now:
        return "noop: review window still open"
    _approve(ctx, order, milestones, m, action=MilestoneAction.AUTO_APPROVE, actor=None, role="system")
    return "applied"


def flag_late(ctx: Ctx, *, order_id: str, milestone_id: str) -> str:
    """Timer: tell both parties a milestone became late (the buyer may now cancel without kill fee)."""
    order = repo.get_order(ctx.session, order_id, lock=True)
    if order is None:
        return "noop: order gone"
    m = find_milestone(repo.milestones_of(ctx.session, order.id), milestone_id)
    if not lifecycle.is_late(m.milestone_status, m.due_at, ctx.now, order.terms):
        return f"noop: not late ({m.status})"
    events.record(
        ctx, "milestone.late", order_id=order.id, milestone_id=m.id, actor=None, actor_role="system",
        payload={"seq": m.seq, "due_at": m.due_at.isoformat() if m.due_at else None},
    )
    return "applied"


# ---------------------------------------------------------------------------------------------
# Cancelling
# ---------------------------------------------------------------------------------------------


def cancel(ctx: Ctx, *, actor: User, order_id: str, reason: str) -> Order:
    """Cancel the rest of an order (see lifecycle.plan_cancel_rest for who gets what)."""
    order, role = load_order(ctx, order_id, actor, lock=True)
    require_party(role, "cancel an order")
    reason = _text(reason, "reason", max_len=MAX_DESCRIPTION, required=True)
    next_order_status(order.order_status, OrderAction.CANCEL)
    milestones = repo.milestones_of(ctx.session, order.id)
    if order.order_status == OrderStatus.PROPOSED:
        for m in milestones:
            m.transition(MilestoneAction.CANCEL)
            m.ended_at = ctx.now
        order.transition(OrderAction.CANCEL)
        order.ended_at = ctx.now
        order.cancelled_by_id = actor.id
        events.record(ctx, "order.cancelled", order_id=order.id, actor=actor, actor_role=role,
                      payload={"reason": reason, "before_agreement": True})
        return order
    decisions = lifecycle.plan_cancel_rest(_views(milestones), actor=role, terms=order.terms, now=ctx.now)
    if not decisions:
        raise IllegalTransition(
            "nothing is left to cancel: the remaining milestones are finished or in dispute",
            code="nothing_to_cancel",
        )
    order.cancelled_by_id = actor.id
    for d in decisions:
        m = milestones[d.seq - 1]
        was = m.status
        m.transition(MilestoneAction.CANCEL)
        m.ended_at = ctx.now
        events.record(
            ctx, "milestone.cancelled", order_id=order.id, milestone_id=m.id, actor=actor, actor_role=role,
            payload={"seq": m.seq, "was": was, "kill_fee_amount": d.seller_amount,
                     "refund_amount": d.refund_amount, "reason": reason},
        )
        settle(ctx, order, m, seller_amount=d.seller_amount, reason="cancelled", actor_role=role)
    _finish_if_done(ctx, order, milestones)
    if order.order_status in (OrderStatus.AGREED, OrderStatus.ACTIVE):
        events.record(ctx, "order.cancel_pending_dispute", order_id=order.id, actor=actor, actor_role=role,
                      payload={"reason": reason})
    return order


def cancel_preview(ctx: Ctx, *, actor: User, order_id: str) -> list[lifecycle.CancelDecision]:
    """What cancelling now would do, for the confirmation screen. Raises what cancel would raise."""
    order, role = load_order(ctx, order_id, actor)
    require_party(role, "cancel an order")
    milestones = repo.milestones_of(ctx.session, order.id)
    if order.order_status == OrderStatus.PROPOSED:
        return []
    next_order_status(order.order_status, OrderAction.CANCEL)
    return lifecycle.plan_cancel_rest(_views(milestones), actor=role, terms=order.terms, now=ctx.now)


__all__ = [
    "MilepostError", "UploadedFile", "accept", "approve", "auto_approve", "cancel", "counter",
    "deliver", "flag_late", "fund", "propose", "request_revision",
]
