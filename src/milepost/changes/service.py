"""Change orders: either party proposes a change of an agreed plan; the other accepts or declines.

A change is a list of operations — add milestones (at the end), remove not-started ones, update a
not-started or the in-progress one (scope, amount, due days, revisions). Accepting it writes a new
plan version and moves the money in the same transaction:

* a funded milestone whose amount goes up is topped up: the buyer is charged the difference (with
  the buyer fee on it) and a `fund` transfer books it;
* a funded milestone whose amount goes down gets a reversing `fund` transfer for the difference
  (SPEC §2.5: corrections are reversing transfers) and the buyer is paid it back. Its funded amount
  is then the new amount, so "a funded milestone holds exactly its amount" keeps holding and the
  audit needs no exception for repriced milestones;
* a removed milestone that was funded is cancelled and refunded like a cancelled milestone
  (refund key `refund:<milestone>:change:<change>`);
* added milestones are funded at acceptance when the order is funded upfront and already funded;
  otherwise (per_milestone, or an upfront order not funded yet) they wait unfunded like the rest.

Accepting locks the order and re-checks everything against the current milestones: an approval, a
delivery or another change that got there first makes the change stale (409), never half-applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from milepost.changes import repository as repo
from milepost.changes.models import ChangeOrder
from milepost.changes.states import ChangeAction, ChangeStatus
from milepost.db import new_id
from milepost.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from milepost.events import service as events
from milepost.ledger import postings
from milepost.ledger import service as ledger
from milepost.money import MAX_AMOUNT, buyer_fee
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.lifecycle import Role
from milepost.orders.models import Milestone, Order, PlanVersion
from milepost.orders.plan import MAX_DESCRIPTION, text_problem, validate_plan
from milepost.orders.states import MilestoneAction, MilestoneStatus, OrderStatus
from milepost.orders.terms import FundingMode

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx

UPDATABLE_FIELDS = ("title", "description", "acceptance_criteria", "amount", "due_days", "revisions")
MAX_OPERATIONS = 50
RUNNING_ORDER = (OrderStatus.AGREED, OrderStatus.ACTIVE)


# ---------------------------------------------------------------------------------------------
# Planning a change against the current milestones (used at proposal and again at acceptance)
# ---------------------------------------------------------------------------------------------


def _spec_dict(m: Milestone) -> dict[str, Any]:
    return {"title": m.title, "description": m.description,
            "acceptance_criteria": list(m.acceptance_criteria), "amount": m.amount,
            "due_days": m.due_days, "revisions": m.revisions_allowed}


def _validate(ctx: Ctx, order: Order, raw: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Validate milestone dicts like a plan; field paths name the operation they came from."""
    try:
        specs = validate_plan(order.currency, raw, default_revisions=order.revisions,
                              limits=ctx.settings.plan_limits)
    except InvalidInput as exc:
        raise InvalidInput(
            "the change is invalid",
            errors=[{**e, "field": e["field"].replace("milestones", prefix, 1)} for e in exc.errors],
        ) from None
    return [s.as_dict() for s in specs]


class _Plan:
    """The effect of a change's operations on the current milestones."""

    def __init__(self) -> None:
        self.updates: list[tuple[Milestone, dict[str, Any]]] = []  # milestone, new spec
        self.removals: list[Milestone] = []
        self.additions: list[dict[str, Any]] = []
        self.total_before = 0
        self.total_after = 0
        self.escrow_delta = 0
        self.fund_additions = False


def _plan_change(
    ctx: Ctx, order: Order, milestones: Sequence[Milestone], operations: dict[str, Any]
) -> _Plan:
    """Check the operations against the milestones as they are now; raise what is wrong."""
    problems: list[dict[str, str]] = []
    add = operations.get("add") or []
    remove = operations.get("remove") or []
    update = operations.get("update") or []
    if not isinstance(add, list) or not isinstance(remove, list) or not isinstance(update, list):
        raise InvalidInput("add, remove and update must be lists")
    if not (add or remove or update):
        raise InvalidInput("a change needs at least one operation: add, remove or update milestones",
                           errors=[{"field": "", "message": "nothing to change"}])
    if len(add) + len(remove) + len(update) > MAX_OPERATIONS:
        raise InvalidInput(f"a change has at most {MAX_OPERATIONS} operations")
    by_id = {m.id: m for m in milestones}
    plan = _Plan()
    plan.total_before = order.total_amount
    touched: set[str] = set()
    stale: list[str] = []

    def lookup(mid: object, at: str) -> Milestone | None:
        if not isinstance(mid, str) or mid not in by_id:
            problems.append({"field": at, "message": "is not a milestone of this order"})
            return None
        if mid in touched:
            problems.append({"field": at, "message": "names a milestone already changed in this change"})
            return None
        touched.add(mid)
        return by_id[mid]

    for i, mid in enumerate(remove):
        m = lookup(mid, f"remove[{i}]")
        if m is None:
            continue
        if m.milestone_status != MilestoneStatus.PENDING:
            stale.append(f"milestone #{m.seq} is {m.status.replace('_', ' ')}: only milestones that have "
                         "not started can be removed")
            continue
        plan.removals.append(m)
    for i, raw in enumerate(update):
        at = f"update[{i}]"
        if not isinstance(raw, dict):
            problems.append({"field": at, "message": "must be an object"})
            continue
        m = lookup(raw.get("milestone_id"), f"{at}.milestone_id")
        if m is None:
            continue
        unknown = set(raw) - {"milestone_id", *UPDATABLE_FIELDS}
        if unknown:
            problems.append({"field": at, "message": f"unknown fields: {', '.join(sorted(unknown))}"})
            continue
        if not set(raw) - {"milestone_id"}:
            problems.append({"field": at, "message": "names no field to change"})
            continue
        if m.milestone_status not in (MilestoneStatus.PENDING, MilestoneStatus.IN_PROGRESS):
            stale.append(f"milestone #{m.seq} is {m.status.replace('_', ' ')}: only a milestone that has "
                         "not started or the one in progress can change (approve, revise or dispute "
                         "a delivered one)")
            continue
        merged = {**_spec_dict(m), **{k: v for k, v in raw.items() if k != "milestone_id"}}
        try:
            spec = _validate(ctx, order, [merged], at)[0]
        except InvalidInput as exc:
            problems.extend({**e, "field": e["field"].replace(f"{at}[0]", at)} for e in exc.errors)
            continue
        if spec["revisions"] < m.revisions_used:
            problems.append({"field": f"{at}.revisions",
                             "message": f"{m.revisions_used} revisions are already used"})
            continue
        plan.updates.append((m, spec))
    if add:
        try:
            plan.additions = _validate(ctx, order, add, "add")
        except InvalidInput as exc:
            problems.extend(exc.errors)
    if problems:
        raise InvalidInput("the change is invalid", errors=problems)
    if stale:
        raise Conflict("; ".join(stale), code="milestone_not_changeable")
    live = [m for m in milestones if m.milestone_status != MilestoneStatus.CANCELLED]
    live_after = len(live) - len(plan.removals) + len(plan.additions)
    if live_after < 1:
        raise Conflict("a change cannot remove every milestone: cancel the order instead",
                       code="empty_plan")
    if live_after > ctx.settings.plan_limits.max_milestones:
        raise InvalidInput(f"a plan has at most {ctx.settings.plan_limits.max_milestones} milestones")
    # Upfront orders that are already funded keep being fully funded: new milestones too.
    plan.fund_additions = order.funding == FundingMode.UPFRONT and any(
        m.is_funded for m in live if m.milestone_status == MilestoneStatus.PENDING
        or m.milestone_status == MilestoneStatus.IN_PROGRESS
    )
    total = order.total_amount
    for m in plan.removals:
        total -= m.amount
        plan.escrow_delta -= m.in_escrow_amount
    for m, spec in plan.updates:
        total += spec["amount"] - m.amount
        if m.is_funded:
            plan.escrow_delta += spec["amount"] - m.amount
    for spec in plan.additions:
        total += spec["amount"]
        if plan.fund_additions:
            plan.escrow_delta += spec["amount"]
    if total > MAX_AMOUNT:
        raise InvalidInput("the total of the plan does not fit in 64 bits")
    plan.total_after = total
    return plan


def _operations(add: Any, remove: Any, update: Any) -> dict[str, Any]:
    return {"add": list(add or []), "remove": list(remove or []), "update": list(update or [])}


# ---------------------------------------------------------------------------------------------
# Use cases
# ---------------------------------------------------------------------------------------------


def _reason(value: Any, field: str = "reason", *, required: bool = True) -> str:
    why = text_problem(value, max_len=MAX_DESCRIPTION, required=required)
    if why is not None:
        raise InvalidInput(f"{field} {why}", errors=[{"field": field, "message": why}])
    return str(value).strip()


def propose_change(
    ctx: Ctx,
    *,
    actor: User,
    order_id: str,
    reason: str,
    add: list[dict[str, Any]] | None = None,
    remove: list[str] | None = None,
    update: list[dict[str, Any]] | None = None,
) -> ChangeOrder:
    """Either party proposes a change of an agreed or active order's plan."""
    order, role = orders.load_order(ctx, order_id, actor, lock=True)
    orders.require_party(role, "propose a change")
    reason = _reason(reason)
    if order.order_status not in RUNNING_ORDER:
        hint = ("the plan is still being negotiated: counter it instead"
                if order.order_status == OrderStatus.PROPOSED else "the order has ended")
        raise IllegalTransition(f"cannot change the plan of an order that is {order.status}: {hint}",
                                code=f"order_{order.status}")
    operations = _operations(add, remove, update)
    plan = _plan_change(ctx, order, orders_repo.milestones_of(ctx.session, order.id), operations)
    change = ChangeOrder(
        id=new_id("chg"), order_id=order.id, proposed_by_id=actor.id, proposed_by_role=str(role),
        status=ChangeStatus.PROPOSED, reason=reason, base_plan_version=order.plan_version,
        operations=operations, escrow_delta_amount=plan.escrow_delta,
        total_before_amount=plan.total_before, total_after_amount=plan.total_after,
        created_at=ctx.now, decision_note="",
    )
    ctx.session.add(change)
    events.record(
        ctx, "change.proposed", order_id=order.id, actor=actor, actor_role=role,
        payload={"change_id": change.id, "reason": reason, "added": len(plan.additions),
                 "removed": [m.seq for m in plan.removals], "updated": [m.seq for m, _ in plan.updates],
                 "total_before": plan.total_before, "total_after": plan.total_after,
                 "escrow_delta": plan.escrow_delta},
    )
    ctx.session.flush()
    return change


def _load_change(ctx: Ctx, change_id: str, actor: User) -> tuple[ChangeOrder, Order, Role]:
    change = repo.get_change(ctx.session, change_id)
    if change is None:
        raise NotFound("change order not found", code="change_not_found")
    try:
        order, role = orders.load_order(ctx, change.order_id, actor, lock=True)
    except NotFound:
        raise NotFound("change order not found", code="change_not_found") from None
    # Re-read under the order lock: a concurrent answer may have landed while we waited.
    fresh = repo.get_change(ctx.session, change_id, fresh=True)
    assert fresh is not None
    return fresh, order, role


def _answering(change: ChangeOrder, actor: User, role: Role, doing: str) -> None:
    orders.require_party(role, doing)
    if change.proposed_by_id == actor.id:
        raise Conflict("you proposed this change: the other party accepts or declines it",
                       code="own_proposal")


def decline_change(ctx: Ctx, *, actor: User, change_id: str, note: str = "") -> ChangeOrder:
    change, order, role = _load_change(ctx, change_id, actor)
    _answering(change, actor, role, "decline a change")
    note = _reason(note or "", "note", required=False)
    change.transition(ChangeAction.DECLINE)
    change.decided_at = ctx.now
    change.decided_by_id = actor.id
    change.decision_note = note
    events.record(ctx, "change.declined", order_id=order.id, actor=actor, actor_role=role,
                  payload={"change_id": change.id, "note": note})
    return change


def accept_change(ctx: Ctx, *, actor: User, change_id: str) -> ChangeOrder:
    """Accept: re-check against the milestones as they are now, then apply and move the money."""
    change, order, role = _load_change(ctx, change_id, actor)
    _answering(change, actor, role, "accept a change")
    if change.status != ChangeStatus.PROPOSED:
        change.transition(ChangeAction.ACCEPT)  # raises the uniform 409
    if order.order_status not in RUNNING_ORDER:
        raise IllegalTransition(f"the order is {order.status}: its plan can no longer change",
                                code=f"order_{order.status}")
    if change.base_plan_version != order.plan_version:
        raise Conflict(
            f"the plan moved to version {order.plan_version} after this change was proposed: "
            "propose it again against the current plan", code="stale_change",
        )
    milestones = orders_repo.milestones_of(ctx.session, order.id)
    try:
        plan = _plan_change(ctx, order, milestones, change.operations)
    except (Conflict, InvalidInput) as exc:
        raise Conflict(f"the change no longer fits the order: {exc.message}", code="stale_change") from None
    change.transition(ChangeAction.ACCEPT)
    change.decided_at = ctx.now
    change.decided_by_id = actor.id
    change.escrow_delta_amount = plan.escrow_delta
    change.total_after_amount = plan.total_after
    _apply(ctx, order, milestones, change, plan, actor=actor, role=role)
    for other in repo.open_changes_of(ctx.session, order.id):
        if other.id != change.id:
            other.transition(ChangeAction.SUPERSEDE)
            other.decided_at = ctx.now
            events.record(ctx, "change.superseded", order_id=order.id, actor=None, actor_role="system",
                          payload={"change_id": other.id, "by": change.id})
    return change


def _apply(
    ctx: Ctx, order: Order, milestones: list[Milestone], change: ChangeOrder, plan: _Plan,
    *, actor: User, role: Role,
) -> None:
    key = f"change:{change.id}"
    # Removed milestones first: their refunds are independent of the rest.
    for m in plan.removals:
        m.transition(MilestoneAction.CANCEL)
        m.ended_at = ctx.now
        events.record(ctx, "milestone.cancelled", order_id=order.id, milestone_id=m.id, actor=actor,
                      actor_role=role, payload={"seq": m.seq, "was": "pending", "change_id": change.id,
                                                "refund_amount": m.in_escrow_amount, "reason": "change"})
        ledger.refund_to_buyer(ctx, order=order, milestone=m, amount=m.in_escrow_amount, reason=key,
                               actor_role=str(role))
    charges: list[tuple[Milestone, int, int]] = []  # milestone, amount, buyer fee — charged together
    for m, spec in plan.updates:
        before = _spec_dict(m)
        delta = spec["amount"] - m.amount
        if m.is_funded and delta < 0:
            _unfund(ctx, order, m, -delta, key=key, actor=actor, role=role)
        elif m.is_funded and delta > 0:
            fee = buyer_fee(spec["amount"], order.buyer_fee_bps) - buyer_fee(m.amount, order.buyer_fee_bps)
            charges.append((m, delta, fee))
        due_shift = spec["due_days"] - m.due_days
        m.title, m.description = spec["title"], spec["description"]
        m.acceptance_criteria = list(spec["acceptance_criteria"])
        m.amount, m.due_days, m.revisions_allowed = spec["amount"], spec["due_days"], spec["revisions"]
        if m.due_at is not None and due_shift:
            # Shift rather than recompute, so earlier extensions and revision time are kept.
            m.due_at = m.due_at + timedelta(days=due_shift)
            orders._schedule_late(ctx, order, m)
        changed = {k: [before[k], v] for k, v in spec.items() if before[k] != v}
        events.record(ctx, "milestone.changed", order_id=order.id, milestone_id=m.id, actor=actor,
                      actor_role=role, payload={"seq": m.seq, "change_id": change.id, "changed": changed})
    next_seq = max((m.seq for m in milestones), default=0)
    for spec in plan.additions:
        next_seq += 1
        m = Milestone(
            id=new_id("ms"), order_id=order.id, seq=next_seq, title=spec["title"],
            description=spec["description"], acceptance_criteria=list(spec["acceptance_criteria"]),
            amount=spec["amount"], due_days=spec["due_days"], revisions_allowed=spec["revisions"],
            revisions_used=0, status=MilestoneStatus.PENDING, funded_amount=0, buyer_fee_amount=0,
            released_amount=0, refunded_amount=0, held_for_seller_amount=0, deliveries_count=0,
        )
        ctx.session.add(m)
        milestones.append(m)
        events.record(ctx, "milestone.added", order_id=order.id, milestone_id=m.id, actor=actor,
                      actor_role=role, payload={"seq": m.seq, "amount": m.amount, "change_id": change.id})
        if plan.fund_additions:
            charges.append((m, m.amount, buyer_fee(m.amount, order.buyer_fee_bps)))
    ctx.session.flush()
    if charges:
        _charge(ctx, order, charges, key=key, actor=actor, role=role)
    order.total_amount = plan.total_after
    order.plan_version += 1
    change.resulting_plan_version = order.plan_version
    ctx.session.add(PlanVersion(
        order_id=order.id, version=order.plan_version, proposed_by_id=change.proposed_by_id,
        terms=order.terms.as_dict(),
        milestones=[{**_spec_dict(m), "id": m.id, "seq": m.seq, "status": m.status} for m in milestones],
        note=f"change {change.id}: {change.reason}"[:MAX_DESCRIPTION], created_at=ctx.now,
    ))
    events.record(
        ctx, "change.accepted", order_id=order.id, actor=actor, actor_role=role,
        payload={"change_id": change.id, "plan_version": order.plan_version,
                 "total_before": plan.total_before, "total_after": plan.total_after,
                 "escrow_delta": plan.escrow_delta},
    )
    ctx.session.flush()
    orders.advance(ctx, order, milestones)


def _charge(
    ctx: Ctx, order: Order, charges: list[tuple[Milestone, int, int]], *, key: str, actor: User, role: Role
) -> None:
    """One charge to the buyer for every top-up and new funding of the change, booked per milestone."""
    total = sum(amount + fee for _, amount, fee in charges)
    charge_ref = ctx.provider.charge(payer_id=order.buyer_id, amount=total, currency=order.currency,
                                     reference=key)
    for m, amount, fee in charges:
        first = not m.is_funded
        ledger.book(
            ctx, postings.fund(order_id=order.id, currency=order.currency, amount=amount, buyer_fee_amount=fee),
            # A new milestone's funding uses fund()'s own key, so it can never be funded twice.
            key=f"fund:{m.id}" if first else f"fund:{m.id}:{key}",
            order_id=order.id, milestone_id=m.id, external_ref=charge_ref,
            memo=f"{order.title} — #{m.seq} {m.title} ({'funded' if first else 'top-up'} by change)",
            actor=actor, actor_role=str(role),
        )
        m.funded_amount += amount
        m.buyer_fee_amount += fee
        if first:
            m.funded_at = ctx.now
        events.record(ctx, "milestone.funded", order_id=order.id, milestone_id=m.id, actor=actor,
                      actor_role=role, payload={"seq": m.seq, "amount": amount, "buyer_fee_amount": fee,
                                                "top_up": not first})


def _unfund(ctx: Ctx, order: Order, m: Milestone, amount: int, *, key: str, actor: User, role: Role) -> None:
    """Reverse `amount` of a milestone's funding (its price went down) and pay it back to the buyer."""
    new_amount = m.amount - amount
    fee_back = buyer_fee(m.amount, order.buyer_fee_bps) - buyer_fee(new_amount, order.buyer_fee_bps)
    forward = postings.fund(order_id=order.id, currency=order.currency, amount=amount, buyer_fee_amount=fee_back)
    reversal = postings.TransferSpec(
        forward.kind, forward.currency, tuple(postings.Posting(p.account, -p.amount) for p in forward.postings)
    )
    ref = f"unfund:{m.id}:{key}"
    external = ctx.provider.refund(payee_id=order.buyer_id, amount=amount + fee_back,
                                   currency=order.currency, reference=ref)
    ledger.book(ctx, reversal, key=ref, order_id=order.id, milestone_id=m.id, external_ref=external,
                memo=f"{order.title} — #{m.seq} {m.title} (price lowered by change)", actor=actor,
                actor_role=str(role))
    m.funded_amount -= amount
    m.buyer_fee_amount -= fee_back
    events.record(ctx, "milestone.refunded", order_id=order.id, milestone_id=m.id, actor=actor,
                  actor_role=role, payload={"seq": m.seq, "amount": amount, "buyer_fee_amount": fee_back,
                                            "reason": "change"})


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def get_change(ctx: Ctx, *, actor: User, change_id: str) -> ChangeOrder:
    change = repo.get_change(ctx.session, change_id)
    if change is None:
        raise NotFound("change order not found", code="change_not_found")
    try:
        orders.load_order(ctx, change.order_id, actor)
    except NotFound:
        raise NotFound("change order not found", code="change_not_found") from None
    return change


def changes_of_order(ctx: Ctx, *, actor: User, order_id: str) -> list[ChangeOrder]:
    order, _ = orders.load_order(ctx, order_id, actor)
    return list(repo.changes_of(ctx.session, order.id))


def change_as_dict(change: ChangeOrder) -> dict[str, Any]:
    return {
        "id": change.id, "order_id": change.order_id, "status": change.status,
        "proposed_by": change.proposed_by_id, "proposed_by_role": change.proposed_by_role,
        "reason": change.reason, "base_plan_version": change.base_plan_version,
        "operations": change.operations, "escrow_delta": change.escrow_delta_amount,
        "total_before": change.total_before_amount, "total_after": change.total_after_amount,
        "resulting_plan_version": change.resulting_plan_version,
        "created_at": change.created_at.isoformat(),
        "decided_at": change.decided_at.isoformat() if change.decided_at else None,
        "decision_note": change.decision_note,
    }
