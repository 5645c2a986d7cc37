"""Transition tables: everything in the table is allowed, everything else raises IllegalTransition."""

from __future__ import annotations

import itertools

import pytest

from milepost.disputes.states import (
    DISPUTE_TRANSITIONS,
    DisputeAction,
    DisputeStatus,
    next_dispute_status,
)
from milepost.errors import IllegalTransition
from milepost.orders.states import (
    MILESTONE_TRANSITIONS,
    ORDER_TRANSITIONS,
    MilestoneAction,
    MilestoneStatus,
    OrderAction,
    OrderStatus,
    milestone_actions_from,
    next_milestone_status,
    next_order_status,
)

M, MA = MilestoneStatus, MilestoneAction

ILLEGAL_MILESTONE = [p for p in itertools.product(M, MA) if p not in MILESTONE_TRANSITIONS]
ILLEGAL_ORDER = [p for p in itertools.product(OrderStatus, OrderAction) if p not in ORDER_TRANSITIONS]
ILLEGAL_DISPUTE = [p for p in itertools.product(DisputeStatus, DisputeAction) if p not in DISPUTE_TRANSITIONS]


def test_states_are_lowercase_string_enums():
    for enum in (M, OrderStatus, DisputeStatus):
        assert all(s.value == s.value.lower() and str(s) == s.value for s in enum)


@pytest.mark.parametrize(("state", "action"), ILLEGAL_MILESTONE, ids=lambda v: str(v))
def test_every_illegal_milestone_transition_raises(state, action):
    with pytest.raises(IllegalTransition) as exc:
        next_milestone_status(state, action)
    assert exc.value.status == 409
    assert exc.value.code == f"milestone_{state}"


@pytest.mark.parametrize(("state", "action"), ILLEGAL_ORDER, ids=lambda v: str(v))
def test_every_illegal_order_transition_raises(state, action):
    with pytest.raises(IllegalTransition):
        next_order_status(state, action)


@pytest.mark.parametrize(("state", "action"), ILLEGAL_DISPUTE, ids=lambda v: str(v))
def test_every_illegal_dispute_transition_raises(state, action):
    with pytest.raises(IllegalTransition):
        next_dispute_status(state, action)


def test_milestone_lifecycle_of_spec_2_3():
    assert next_milestone_status(M.PENDING, MA.START) == M.IN_PROGRESS
    assert next_milestone_status(M.IN_PROGRESS, MA.DELIVER) == M.DELIVERED
    assert next_milestone_status(M.DELIVERED, MA.REQUEST_REVISION) == M.IN_PROGRESS
    assert next_milestone_status(M.DELIVERED, MA.APPROVE) == M.APPROVED
    assert next_milestone_status(M.DELIVERED, MA.AUTO_APPROVE) == M.APPROVED
    assert next_milestone_status(M.PENDING, MA.CANCEL) == M.CANCELLED
    assert next_milestone_status(M.IN_PROGRESS, MA.CANCEL) == M.CANCELLED
    assert next_milestone_status(M.IN_PROGRESS, MA.DISPUTE) == M.DISPUTED
    assert next_milestone_status(M.DELIVERED, MA.DISPUTE) == M.DISPUTED
    assert next_milestone_status(M.DISPUTED, MA.RESOLVE) == M.RESOLVED


def test_delivered_milestone_cannot_be_cancelled():
    with pytest.raises(IllegalTransition) as exc:
        next_milestone_status(M.DELIVERED, MA.CANCEL)
    assert "approve" in exc.value.message


def test_finished_milestones_allow_nothing():
    for state in (M.APPROVED, M.CANCELLED, M.RESOLVED):
        assert milestone_actions_from(state) == []


def test_pending_milestone_cannot_be_delivered_or_disputed():
    for action in (MA.DELIVER, MA.DISPUTE, MA.APPROVE):
        with pytest.raises(IllegalTransition):
            next_milestone_status(M.PENDING, action)


def test_order_lifecycle():
    assert next_order_status(OrderStatus.PROPOSED, OrderAction.COUNTER) == OrderStatus.PROPOSED
    assert next_order_status(OrderStatus.PROPOSED, OrderAction.ACCEPT) == OrderStatus.AGREED
    assert next_order_status(OrderStatus.AGREED, OrderAction.START) == OrderStatus.ACTIVE
    assert next_order_status(OrderStatus.ACTIVE, OrderAction.COMPLETE) == OrderStatus.COMPLETED
    assert next_order_status(OrderStatus.ACTIVE, OrderAction.CANCEL) == OrderStatus.CANCELLED
    for ended in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
        for action in OrderAction:
            with pytest.raises(IllegalTransition):
                next_order_status(ended, action)


def test_dispute_lifecycle():
    D, DA = DisputeStatus, DisputeAction
    assert next_dispute_status(D.OPEN, DA.COUNTER) == D.OPEN
    assert next_dispute_status(D.OPEN, DA.ACCEPT) == D.RESOLVED
    assert next_dispute_status(D.OPEN, DA.ACCEPT_BY_SILENCE) == D.RESOLVED
    assert next_dispute_status(D.OPEN, DA.ESCALATE) == D.ESCALATED
    assert next_dispute_status(D.ESCALATED, DA.RESOLVE) == D.RESOLVED
    with pytest.raises(IllegalTransition):
        next_dispute_status(D.ESCALATED, DA.ACCEPT_BY_SILENCE)
    with pytest.raises(IllegalTransition):
        next_dispute_status(D.RESOLVED, DA.RESOLVE)
