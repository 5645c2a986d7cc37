"""The order and milestone state machines: one transition table each.

`next_order_status` and `next_milestone_status` are the only ways to compute a new status; the
models' `transition()` methods are the only places that assign one. Anything not in a table raises
`IllegalTransition` with a message that says what the caller can do instead.
"""

from __future__ import annotations

from enum import StrEnum

from milepost.errors import IllegalTransition


class OrderStatus(StrEnum):
    PROPOSED = "proposed"
    AGREED = "agreed"  # plan accepted, waiting for the first milestone to be funded and started
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class OrderAction(StrEnum):
    COUNTER = "counter"
    ACCEPT = "accept"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"


class MilestoneStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    APPROVED = "approved"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"
    RESOLVED = "resolved"


class MilestoneAction(StrEnum):
    START = "start"
    DELIVER = "deliver"
    REQUEST_REVISION = "request_revision"
    APPROVE = "approve"
    AUTO_APPROVE = "auto_approve"
    CANCEL = "cancel"
    DISPUTE = "dispute"
    RESOLVE = "resolve"


ORDER_TRANSITIONS: dict[tuple[OrderStatus, OrderAction], OrderStatus] = {
    (OrderStatus.PROPOSED, OrderAction.COUNTER): OrderStatus.PROPOSED,
    (OrderStatus.PROPOSED, OrderAction.ACCEPT): OrderStatus.AGREED,
    (OrderStatus.PROPOSED, OrderAction.CANCEL): OrderStatus.CANCELLED,
    (OrderStatus.AGREED, OrderAction.START): OrderStatus.ACTIVE,
    (OrderStatus.AGREED, OrderAction.CANCEL): OrderStatus.CANCELLED,
    (OrderStatus.AGREED, OrderAction.COMPLETE): OrderStatus.COMPLETED,
    (OrderStatus.ACTIVE, OrderAction.COMPLETE): OrderStatus.COMPLETED,
    (OrderStatus.ACTIVE, OrderAction.CANCEL): OrderStatus.CANCELLED,
}

MILESTONE_TRANSITIONS: dict[tuple[MilestoneStatus, MilestoneAction], MilestoneStatus] = {
    (MilestoneStatus.PENDING, MilestoneAction.START): MilestoneStatus.IN_PROGRESS,
    (MilestoneStatus.PENDING, MilestoneAction.CANCEL): MilestoneStatus.CANCELLED,
    (MilestoneStatus.IN_PROGRESS, MilestoneAction.DELIVER): MilestoneStatus.DELIVERED,
    (MilestoneStatus.IN_PROGRESS, MilestoneAction.CANCEL): MilestoneStatus.CANCELLED,
    (MilestoneStatus.IN_PROGRESS, MilestoneAction.DISPUTE): MilestoneStatus.DISPUTED,
    (MilestoneStatus.DELIVERED, MilestoneAction.REQUEST_REVISION): MilestoneStatus.IN_PROGRESS,
    (MilestoneStatus.DELIVERED, MilestoneAction.APPROVE): MilestoneStatus.APPROVED,
    (MilestoneStatus.DELIVERED, MilestoneAction.AUTO_APPROVE): MilestoneStatus.APPROVED,
    (MilestoneStatus.DELIVERED, MilestoneAction.DISPUTE): MilestoneStatus.DISPUTED,
    (MilestoneStatus.DISPUTED, MilestoneAction.RESOLVE): MilestoneStatus.RESOLVED,
}

TERMINAL_MILESTONE = frozenset(
    {MilestoneStatus.APPROVED, MilestoneStatus.CANCELLED, MilestoneStatus.RESOLVED}
)
OPEN_ORDER = frozenset({OrderStatus.PROPOSED, OrderStatus.AGREED, OrderStatus.ACTIVE})

# What a caller can do instead, by current milestone status: part of every 409 message.
_MILESTONE_HINTS: dict[MilestoneStatus, str] = {
    MilestoneStatus.PENDING: "it has not started yet; it starts once funded and the milestones "
    "before it are finished",
    MilestoneStatus.IN_PROGRESS: "the seller can deliver it; either party can dispute it or cancel "
    "the rest of the order",
    MilestoneStatus.DELIVERED: "the buyer can approve it, request a revision or dispute it",
    MilestoneStatus.APPROVED: "it is approved and paid; nothing more can happen to it",
    MilestoneStatus.CANCELLED: "it is cancelled; nothing more can happen to it",
    MilestoneStatus.DISPUTED: "it is in dispute; accept or counter the proposal, or wait for the "
    "operator",
    MilestoneStatus.RESOLVED: "its dispute is resolved; nothing more can happen to it",
}

_ORDER_HINTS: dict[OrderStatus, str] = {
    OrderStatus.PROPOSED: "the plan is still being negotiated: accept it or counter it",
    OrderStatus.AGREED: "the plan is agreed and waiting for funding",
    OrderStatus.ACTIVE: "the order is running",
    OrderStatus.COMPLETED: "the order is completed",
    OrderStatus.CANCELLED: "the order is cancelled",
}


def next_order_status(current: OrderStatus, action: OrderAction) -> OrderStatus:
    try:
        return ORDER_TRANSITIONS[(current, action)]
    except KeyError:
        raise IllegalTransition(
            f"cannot {action.replace('_', ' ')} an order that is {current}: {_ORDER_HINTS[current]}",
            code=f"order_{current}",
            status_now=str(current),
        ) from None


def next_milestone_status(current: MilestoneStatus, action: MilestoneAction) -> MilestoneStatus:
    try:
        return MILESTONE_TRANSITIONS[(current, action)]
    except KeyError:
        raise IllegalTransition(
            f"cannot {action.replace('_', ' ')} a milestone that is {current.replace('_', ' ')}: "
            f"{_MILESTONE_HINTS[current]}",
            code=f"milestone_{current}",
            status_now=str(current),
        ) from None


def milestone_actions_from(current: MilestoneStatus) -> list[MilestoneAction]:
    return [action for (state, action) in MILESTONE_TRANSITIONS if state == current]
