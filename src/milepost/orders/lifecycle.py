"""Pure lifecycle rules of SPEC §2.3: who may do what, when milestones start, what cancelling costs.

No I/O: the services feed these functions plain values and carry out the decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from milepost.errors import Conflict, IllegalTransition
from milepost.money import bps_floor
from milepost.orders.states import TERMINAL_MILESTONE, MilestoneStatus, OrderStatus
from milepost.orders.terms import Terms


class Role(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"
    OPERATOR = "operator"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class MilestoneView:
    """What the rules need to know about a milestone."""

    seq: int
    status: MilestoneStatus
    amount: int
    funded: bool
    due_at: datetime | None = None


def due_at_for_start(started_at: datetime, due_days: int) -> datetime:
    return started_at + timedelta(days=due_days)


def review_due_at(delivered_at: datetime, terms: Terms) -> datetime:
    return delivered_at + timedelta(days=terms.review_days)


def due_at_after_revision(due_at: datetime, now: datetime, terms: Terms) -> datetime:
    """A revision never shortens the deadline, and leaves at least the turnaround time."""
    return max(due_at, now + timedelta(days=terms.revision_turnaround_days))


def late_at(due_at: datetime, terms: Terms) -> datetime:
    return due_at + timedelta(hours=terms.late_grace_hours)


def first_late_instant(due_at: datetime, terms: Terms) -> datetime:
    """The first moment `is_late` is true: one microsecond (datetime's resolution) after `late_at`.

    The lateness timer is due then; a timer due at `late_at` itself would fire while the milestone
    is not yet late ("more than" the grace period), do nothing, and never fire again.
    """
    return late_at(due_at, terms) + timedelta(microseconds=1)


def is_late(status: MilestoneStatus, due_at: datetime | None, now: datetime, terms: Terms) -> bool:
    """An in-progress milestone is late once it is more than the grace period past its due date."""
    return status == MilestoneStatus.IN_PROGRESS and due_at is not None and now > late_at(due_at, terms)


def check_revision_allowed(revisions_used: int, revisions_allowed: int) -> None:
    if revisions_used >= revisions_allowed:
        raise Conflict(
            f"all {revisions_allowed} revisions of this milestone are used: approve the delivery, "
            "open a dispute, or agree a change to the plan with the seller",
            code="revision_limit_reached",
        )


def next_to_start(order_status: OrderStatus, milestones: Sequence[MilestoneView]) -> int | None:
    """The seq of the milestone that may start now, or None.

    Milestones run in sequence: the first not-finished one starts when the order is agreed or active,
    it is funded, and every milestone before it is approved, resolved or cancelled.
    """
    if order_status not in (OrderStatus.AGREED, OrderStatus.ACTIVE):
        return None
    for m in sorted(milestones, key=lambda m: m.seq):
        if m.status in TERMINAL_MILESTONE:
            continue
        if m.status == MilestoneStatus.PENDING and m.funded:
            return m.seq
        return None
    return None


@dataclass(frozen=True, slots=True)
class CancelDecision:
    """What cancelling one milestone means for its money: seller share (kill fee) and refund."""

    seq: int
    seller_amount: int
    refund_amount: int


def plan_cancel_rest(
    milestones: Sequence[MilestoneView], *, actor: Role, terms: Terms, now: datetime
) -> list[CancelDecision]:
    """Decide the fate of every unfinished milestone when a party cancels the rest of the order.

    * a delivered milestone blocks the cancel: it must be approved, revised or disputed first;
    * pending milestones are cancelled and whatever was funded is refunded;
    * the in-progress milestone is cancelled; when the buyer cancels and it is not late, the kill fee
      goes to the seller and the rest is refunded; a seller's cancel refunds all of it;
    * approved, resolved and cancelled milestones are untouched; disputed ones wait for resolution.
    """
    if actor not in (Role.BUYER, Role.SELLER):
        raise IllegalTransition("only the buyer or the seller can cancel an order", code="not_a_party")
    delivered = [m for m in milestones if m.status == MilestoneStatus.DELIVERED]
    if delivered:
        names = ", ".join(f"#{m.seq}" for m in delivered)
        raise IllegalTransition(
            f"milestone {names} is delivered and waiting for review: approve it, request a revision "
            "or open a dispute before cancelling the rest",
            code="cancel_blocked_by_delivery",
            milestones=[m.seq for m in delivered],
        )
    decisions = []
    for m in sorted(milestones, key=lambda m: m.seq):
        funded = m.amount if m.funded else 0
        if m.status == MilestoneStatus.PENDING:
            decisions.append(CancelDecision(m.seq, 0, funded))
        elif m.status == MilestoneStatus.IN_PROGRESS:
            late = is_late(m.status, m.due_at, now, terms)
            kill_fee = bps_floor(m.amount, terms.kill_fee_bps) if actor == Role.BUYER and not late else 0
            decisions.append(CancelDecision(m.seq, kill_fee, funded - kill_fee))
    return decisions


def order_outcome(statuses_paid: Sequence[tuple[MilestoneStatus, bool]]) -> OrderStatus | None:
    """The order's final status once every milestone is finished, else None.

    Each item is (status, whether any money went to the seller for it). Completed when at least one
    milestone paid the seller, cancelled when none did.
    """
    if not statuses_paid or any(status not in TERMINAL_MILESTONE for status, _ in statuses_paid):
        return None
    return OrderStatus.COMPLETED if any(paid for _, paid in statuses_paid) else OrderStatus.CANCELLED


def role_of(user_id: str, *, buyer_id: str, seller_id: str) -> Role | None:
    if user_id == buyer_id:
        return Role.BUYER
    if user_id == seller_id:
        return Role.SELLER
    return None
