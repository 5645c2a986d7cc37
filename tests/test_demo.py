"""The demo data: loads through the real services, covers every state, and keeps every invariant."""

from sqlalchemy import select

from milepost.demo import load_demo
from milepost.disputes.models import Dispute
from milepost.events.models import Event
from milepost.orders.models import Milestone, Order
from milepost.payouts.models import Payout
from tests.factories import assert_invariants


def test_demo_covers_every_state_and_keeps_invariants(runtime):
    summary = load_demo(runtime)
    assert summary is not None and summary["orders"] >= 6
    assert_invariants(runtime)
    with runtime.reading() as ctx:
        order_states = set(ctx.session.scalars(select(Order.status)))
        milestone_states = set(ctx.session.scalars(select(Milestone.status)))
        dispute_states = set(ctx.session.scalars(select(Dispute.status)))
        event_types = set(ctx.session.scalars(select(Event.type)))
        payouts = ctx.session.scalars(select(Payout)).all()
        revised = ctx.session.scalars(
            select(Milestone).where(Milestone.status == "in_progress", Milestone.revisions_used > 0)
        ).all()
    assert {"proposed", "active", "completed"} <= order_states
    assert {"pending", "in_progress", "delivered", "approved", "cancelled", "disputed", "resolved"} <= milestone_states
    assert {"open", "resolved"} <= dispute_states
    assert revised, "a milestone with a revision requested"
    assert payouts, "a payout"
    assert {"milestone.late", "transfer.clear", "dispute.escalated", "change.accepted",
            "extension.accepted", "review.left"} <= event_types
    with runtime.reading() as ctx:
        approvals = ctx.session.scalars(select(Event.payload).where(Event.type == "milestone.approved")).all()
    assert any(p["auto"] for p in approvals), "a delivery auto-approved when its review window closed"


def test_demo_if_empty_does_nothing_the_second_time(runtime):
    assert load_demo(runtime) is not None
    assert load_demo(runtime, if_empty=True) is None
