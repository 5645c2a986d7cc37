"""Dispute use cases: open, counter, accept, accept by silence, escalate, resolve (operator).

Only the disputed milestone's money is locked: the rest of the order goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from milepost.db import new_id
from milepost.disputes import repository as repo
from milepost.disputes import states
from milepost.disputes.models import Dispute, DisputeProposal
from milepost.disputes.states import DisputeAction, DisputeStatus
from milepost.errors import Forbidden, NotFound
from milepost.events import service as events
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.lifecycle import Role
from milepost.orders.models import Order
from milepost.orders.plan import MAX_DESCRIPTION
from milepost.orders.states import MilestoneAction
from milepost.timers import service as timers

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx


def open_dispute(
    ctx: Ctx, *, actor: User, order_id: str, milestone_id: str, reason: str, seller_amount: int
) -> Dispute:
    order, role = orders.load_order(ctx, order_id, actor, lock=True)
    orders.require_party(role, "open a dispute")
    reason = orders._text(reason, "reason", max_len=MAX_DESCRIPTION, required=True)
    milestones = orders_repo.milestones_of(ctx.session, order.id)
    m = orders.find_milestone(milestones, milestone_id)
    was = m.status
    m.transition(MilestoneAction.DISPUTE)
    seller_amount = states.check_seller_amount(seller_amount, m.amount)
    dispute = Dispute(
        id=new_id("dsp"), order_id=order.id, milestone_id=m.id, status=DisputeStatus.OPEN,
        opened_by_id=actor.id, reason=reason, milestone_status_before=was, opened_at=ctx.now,
        proposals_count=0,
    )
    ctx.session.add(dispute)
    _add_proposal(ctx, order, dispute, actor=actor, role=role, seller_amount=seller_amount, note=reason)
    timers.schedule(
        ctx, kind="dispute_escalate", due_at=states.escalation_due_at(ctx.now, order.terms),
        dedupe_key=f"dispute_escalate:{dispute.id}", order_id=order.id, milestone_id=m.id,
        subject_id=dispute.id,
    )
    events.record(
        ctx, "dispute.opened", order_id=order.id, milestone_id=m.id, actor=actor, actor_role=role,
        payload={"dispute_id": dispute.id, "seq": m.seq, "reason": reason, "seller_amount": seller_amount,
                 "milestone_was": was},
    )
    return dispute


def _add_proposal(
    ctx: Ctx, order: Order, dispute: Dispute, *, actor: User, role: Role, seller_amount: int, note: str
) -> DisputeProposal:
    dispute.proposals_count += 1
    proposal = DisputeProposal(
        id=new_id("dpr"), dispute_id=dispute.id, seq=dispute.proposals_count, proposed_by_id=actor.id,
        role=role, seller_amount=seller_amount, note=note, created_at=ctx.now,
    )
    ctx.session.add(proposal)
    timers.schedule(
        ctx, kind="dispute_response", due_at=states.response_due_at(ctx.now, order.terms),
        dedupe_key=f"dispute_response:{dispute.id}:{proposal.seq}", order_id=order.id,
        milestone_id=dispute.milestone_id, subject_id=dispute.id,
    )
    return proposal


def _load(ctx: Ctx, dispute_id: str, actor: User) -> tuple[Dispute, Order, Role]:
    dispute = repo.get_dispute(ctx.session, dispute_id)
    if dispute is None:
        raise NotFound("dispute not found", code="dispute_not_found")
    try:
        order, role = orders.load_order(ctx, dispute.order_id, actor, lock=True)
    except NotFound:
        raise NotFound("dispute not found", code="dispute_not_found") from None
    dispute = repo.get_dispute(ctx.session, dispute_id)  # re-read under the order's lock
    assert dispute is not None
    return dispute, order, role


def counter(ctx: Ctx, *, actor: User, dispute_id: str, seller_amount: int, note: str = "") -> Dispute:
    dispute, order, role = _load(ctx, dispute_id, actor)
    orders.require_party(role, "counter a dispute proposal")
    last = repo.proposals_of(ctx.session, dispute.id)[-1]
    states.next_dispute_status(states.DisputeStatus(dispute.status), DisputeAction.COUNTER)
    states.check_may_answer(last.proposed_by_id, actor.id)
    m = orders.find_milestone(orders_repo.milestones_of(ctx.session, order.id), dispute.milestone_id)
    seller_amount = states.check_seller_amount(seller_amount, m.amount)
    note = orders._text(note or "", "note", max_len=MAX_DESCRIPTION, required=False)
    dispute.transition(DisputeAction.COUNTER)
    _add_proposal(ctx, order, dispute, actor=actor, role=role, seller_amount=seller_amount, note=note)
    events.record(
        ctx, "dispute.countered", order_id=order.id, milestone_id=dispute.milestone_id, actor=actor,
        actor_role=role, payload={"dispute_id": dispute.id, "seller_amount": seller_amount, "note": note},
    )
    return dispute


def accept(ctx: Ctx, *, actor: User, dispute_id: str) -> Dispute:
    dispute, order, role = _load(ctx, dispute_id, actor)
    orders.require_party(role, "accept a dispute proposal")
    last = repo.proposals_of(ctx.session, dispute.id)[-1]
    states.next_dispute_status(states.DisputeStatus(dispute.status), DisputeAction.ACCEPT)
    states.check_may_answer(last.proposed_by_id, actor.id)
    dispute.transition(DisputeAction.ACCEPT)
    _resolve(ctx, order, dispute, seller_amount=last.seller_amount, how="agreement", actor=actor, role=role)
    return dispute


def resolve(ctx: Ctx, *, actor: User, dispute_id: str, seller_amount: int, note: str = "") -> Dispute:
    """The operator settles a dispute with any split of the milestone's money."""
    dispute, order, _ = _load(ctx, dispute_id, actor)
    if not actor.is_operator:
        raise Forbidden("only an operator can resolve a dispute", code="operator_only")
    m = orders.find_milestone(orders_repo.milestones_of(ctx.session, order.id), dispute.milestone_id)
    states.next_dispute_status(states.DisputeStatus(dispute.status), DisputeAction.RESOLVE)
    seller_amount = states.check_seller_amount(seller_amount, m.amount)
    note = orders._text(note or "", "note", max_len=MAX_DESCRIPTION, required=False)
    dispute.transition(DisputeAction.RESOLVE)
    _resolve(ctx, order, dispute, seller_amount=seller_amount, how="operator", actor=actor,
             role=Role.OPERATOR, note=note)
    return dispute


def _resolve(
    ctx: Ctx, order: Order, dispute: Dispute, *, seller_amount: int, how: str, actor: User | None,
    role: str, note: str = "",
) -> None:
    milestones = orders_repo.milestones_of(ctx.session, order.id)
    m = orders.find_milestone(milestones, dispute.milestone_id)
    m.transition(MilestoneAction.RESOLVE)
    m.ended_at = ctx.now
    m.review_due_at = None
    dispute.resolved_at = ctx.now
    dispute.resolved_seller_amount = seller_amount
    dispute.resolved_how = how
    dispute.resolved_by_id = actor.id if actor else None
    events.record(
        ctx, "dispute.resolved", order_id=order.id, milestone_id=m.id, actor=actor, actor_role=role,
        payload={"dispute_id": dispute.id, "seq": m.seq, "seller_amount": seller_amount,
                 "refund_amount": m.in_escrow_amount - seller_amount, "how": how, "note": note},
    )
    orders.settle(ctx, order, m, seller_amount=seller_amount, reason="dispute", actor_role=str(role))
    orders.advance(ctx, order, milestones)


def accept_by_silence(ctx: Ctx, *, dispute_id: str, proposal_seq: int) -> str:
    """Timer: nobody answered proposal `proposal_seq` in time, so it stands."""
    dispute = repo.get_dispute(ctx.session, dispute_id)
    if dispute is None:
        return "noop: dispute gone"
    order = orders_repo.get_order(ctx.session, dispute.order_id, lock=True)
    dispute = repo.get_dispute(ctx.session, dispute_id)
    assert order is not None and dispute is not None
    if dispute.status != DisputeStatus.OPEN or dispute.proposals_count != proposal_seq:
        return f"noop: dispute {dispute.status}, {dispute.proposals_count} proposals"
    last = repo.proposals_of(ctx.session, dispute.id)[-1]
    dispute.transition(DisputeAction.ACCEPT_BY_SILENCE)
    _resolve(ctx, order, dispute, seller_amount=last.seller_amount, how="silence", actor=None, role="system")
    return "applied"


def escalate(ctx: Ctx, *, dispute_id: str) -> str:
    """Timer: negotiation ran out of time; the operator decides."""
    dispute = repo.get_dispute(ctx.session, dispute_id)
    if dispute is None:
        return "noop: dispute gone"
    order = orders_repo.get_order(ctx.session, dispute.order_id, lock=True)
    dispute = repo.get_dispute(ctx.session, dispute_id)
    assert order is not None and dispute is not None
    if dispute.status != DisputeStatus.OPEN:
        return f"noop: dispute {dispute.status}"
    dispute.transition(DisputeAction.ESCALATE)
    dispute.escalated_at = ctx.now
    events.record(
        ctx, "dispute.escalated", order_id=order.id, milestone_id=dispute.milestone_id, actor=None,
        actor_role="system", payload={"dispute_id": dispute.id},
    )
    return "applied"
