"""Pure lifecycle rules of SPEC §2.3: sequencing, lateness, revisions, cancel-the-rest, outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from milepost.errors import Conflict, IllegalTransition
from milepost.orders.lifecycle import (
    MilestoneView,
    Role,
    check_revision_allowed,
    due_at_after_revision,
    due_at_for_start,
    is_late,
    next_to_start,
    order_outcome,
    plan_cancel_rest,
    review_due_at,
    role_of,
)
from milepost.orders.states import MilestoneStatus as M
from milepost.orders.states import OrderStatus
from milepost.orders.terms import Terms

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TERMS = Terms(kill_fee_bps=2500)


def view(seq, status, amount=10_000, funded=True, due_at=None):
    return MilestoneView(seq=seq, status=status, amount=amount, funded=funded, due_at=due_at)


# --- sequencing -----------------------------------------------------------------------------


def test_first_funded_milestone_starts_when_order_is_agreed():
    assert next_to_start(OrderStatus.AGREED, [view(1, M.PENDING), view(2, M.PENDING)]) == 1


def test_nothing_starts_before_the_order_is_agreed():
    assert next_to_start(OrderStatus.PROPOSED, [view(1, M.PENDING)]) is None
    assert next_to_start(OrderStatus.CANCELLED, [view(1, M.PENDING)]) is None


def test_milestones_run_in_sequence():
    assert next_to_start(OrderStatus.ACTIVE, [view(1, M.IN_PROGRESS), view(2, M.PENDING)]) is None
    assert next_to_start(OrderStatus.ACTIVE, [view(1, M.DELIVERED), view(2, M.PENDING)]) is None
    assert next_to_start(OrderStatus.ACTIVE, [view(1, M.DISPUTED), view(2, M.PENDING)]) is None


@pytest.mark.parametrize("done", [M.APPROVED, M.RESOLVED, M.CANCELLED])
def test_next_milestone_starts_after_earlier_ones_finish(done):
    assert next_to_start(OrderStatus.ACTIVE, [view(2, M.PENDING), view(1, done)]) == 2


def test_unfunded_next_milestone_waits():
    assert next_to_start(OrderStatus.ACTIVE, [view(1, M.APPROVED), view(2, M.PENDING, funded=False),
                                              view(3, M.PENDING)]) is None


def test_due_dates():
    assert due_at_for_start(NOW, 5) == NOW + timedelta(days=5)
    assert review_due_at(NOW, Terms(review_days=3)) == NOW + timedelta(days=3)


# --- lateness -------------------------------------------------------------------------------


def test_milestone_is_late_only_more_than_24h_past_due():
    due = NOW - timedelta(hours=24)
    assert not is_late(M.IN_PROGRESS, due, NOW, TERMS)  # exactly 24 h: not yet
    assert is_late(M.IN_PROGRESS, due - timedelta(seconds=1), NOW, TERMS)
    assert not is_late(M.IN_PROGRESS, NOW, NOW, TERMS)


def test_only_in_progress_milestones_are_late():
    long_ago = NOW - timedelta(days=30)
    for status in (M.DELIVERED, M.DISPUTED, M.PENDING, M.APPROVED):
        assert not is_late(status, long_ago, NOW, TERMS)


# --- revisions ------------------------------------------------------------------------------


def test_revision_allowed_while_under_the_cap():
    check_revision_allowed(0, 2)
    check_revision_allowed(1, 2)


def test_revision_cap_reached_says_what_the_buyer_can_do():
    with pytest.raises(Conflict) as exc:
        check_revision_allowed(2, 2)
    assert exc.value.code == "revision_limit_reached"
    assert all(word in exc.value.message for word in ("approve", "dispute", "agree"))
    with pytest.raises(Conflict):
        check_revision_allowed(0, 0)


def test_revision_turnaround_extends_a_close_due_date():
    terms = Terms(revision_turnaround_days=3)
    assert due_at_after_revision(NOW + timedelta(days=1), NOW, terms) == NOW + timedelta(days=3)


def test_revision_never_shortens_the_due_date():
    terms = Terms(revision_turnaround_days=3)
    assert due_at_after_revision(NOW + timedelta(days=10), NOW, terms) == NOW + timedelta(days=10)


# --- cancel the rest ------------------------------------------------------------------------


def running(due_at=NOW + timedelta(days=2)):
    return view(2, M.IN_PROGRESS, amount=10_000, due_at=due_at)


def test_cancel_refunds_pending_milestones_in_full():
    decisions = plan_cancel_rest([view(1, M.PENDING), view(2, M.PENDING, funded=False)],
                                 actor=Role.BUYER, terms=TERMS, now=NOW)
    assert [(d.seq, d.seller_amount, d.refund_amount) for d in decisions] == [(1, 0, 10_000), (2, 0, 0)]


def test_kill_fee_goes_to_seller_when_buyer_cancels_in_progress_milestone():
    (d,) = plan_cancel_rest([running()], actor=Role.BUYER, terms=TERMS, now=NOW)
    assert (d.seller_amount, d.refund_amount) == (2500, 7500)


def test_kill_fee_rounds_down_for_the_buyer():
    (d,) = plan_cancel_rest([view(1, M.IN_PROGRESS, amount=999, due_at=NOW)], actor=Role.BUYER,
                            terms=Terms(kill_fee_bps=2500), now=NOW)
    assert (d.seller_amount, d.refund_amount) == (249, 750)


def test_kill_fee_not_owed_when_milestone_is_late():
    late = running(due_at=NOW - timedelta(hours=25))
    (d,) = plan_cancel_rest([late], actor=Role.BUYER, terms=TERMS, now=NOW)
    assert (d.seller_amount, d.refund_amount) == (0, 10_000)


def test_seller_cancel_refunds_all():
    (d,) = plan_cancel_rest([running()], actor=Role.SELLER, terms=TERMS, now=NOW)
    assert (d.seller_amount, d.refund_amount) == (0, 10_000)


def test_cancel_blocked_by_delivered_milestone():
    with pytest.raises(IllegalTransition) as exc:
        plan_cancel_rest([view(1, M.APPROVED), view(2, M.DELIVERED), view(3, M.PENDING)],
                         actor=Role.BUYER, terms=TERMS, now=NOW)
    assert exc.value.code == "cancel_blocked_by_delivery"
    assert "#2" in exc.value.message
    assert exc.value.extra["milestones"] == [2]


def test_cancel_leaves_approved_resolved_and_cancelled_milestones_untouched():
    decisions = plan_cancel_rest(
        [view(1, M.APPROVED), view(2, M.RESOLVED), view(3, M.CANCELLED), view(4, M.PENDING)],
        actor=Role.SELLER, terms=TERMS, now=NOW,
    )
    assert [d.seq for d in decisions] == [4]


def test_disputed_milestone_waits_for_resolution_on_cancel():
    decisions = plan_cancel_rest([view(1, M.DISPUTED), view(2, M.PENDING)], actor=Role.BUYER,
                                 terms=TERMS, now=NOW)
    assert [d.seq for d in decisions] == [2]


def test_only_the_parties_cancel():
    with pytest.raises(IllegalTransition):
        plan_cancel_rest([running()], actor=Role.OPERATOR, terms=TERMS, now=NOW)


# --- order outcome --------------------------------------------------------------------------


def test_order_completed_when_all_finished_and_something_was_paid():
    assert order_outcome([(M.APPROVED, True), (M.CANCELLED, False)]) == OrderStatus.COMPLETED
    assert order_outcome([(M.RESOLVED, True)]) == OrderStatus.COMPLETED


def test_order_cancelled_when_all_finished_and_nothing_was_paid():
    assert order_outcome([(M.CANCELLED, False), (M.RESOLVED, False)]) == OrderStatus.CANCELLED


def test_order_not_finished_while_a_milestone_is_open():
    assert order_outcome([(M.APPROVED, True), (M.DISPUTED, False)]) is None
    assert order_outcome([]) is None


def test_role_of():
    assert role_of("b", buyer_id="b", seller_id="s") == Role.BUYER
    assert role_of("s", buyer_id="b", seller_id="s") == Role.SELLER
    assert role_of("x", buyer_id="b", seller_id="s") is None


def test_first_late_instant_is_the_first_moment_the_milestone_is_late():
    from milepost.orders.lifecycle import first_late_instant

    due = NOW - timedelta(days=1)
    first = first_late_instant(due, TERMS)
    assert is_late(M.IN_PROGRESS, due, first, TERMS)
    assert not is_late(M.IN_PROGRESS, due, first - timedelta(microseconds=1), TERMS)
