"""The iCalendar feed parses with the icalendar library and holds every deadline."""

from __future__ import annotations

from icalendar import Calendar
from sqlalchemy import select

from milepost.cashflow import ical
from milepost.ledger.models import ClearingLot
from milepost.orders.models import Milestone, Order
from tests.cashflow.history import build_history
from tests.factories import assert_invariants


def _events(runtime, user_id):
    with runtime.reading() as ctx:
        data = ical.calendar_for(ctx.session, user_id, now=ctx.now)
    cal = Calendar.from_ical(data)
    return {str(e["uid"]): e for e in cal.walk("VEVENT")}


def test_calendar_holds_every_due_date_review_deadline_and_clearance(runtime, clock):
    h = build_history(runtime, clock)
    events = _events(runtime, h.seller.id)
    with runtime.reading() as ctx:
        open_orders = select(Order.id).where(Order.seller_id == h.seller.id, Order.status.in_(["agreed", "active"]))
        milestones = ctx.session.scalars(select(Milestone).where(Milestone.order_id.in_(open_orders))).all()
        lots = ctx.session.scalars(select(ClearingLot).where(
            ClearingLot.seller_id == h.seller.id, ClearingLot.cleared_at.is_(None))).all()
    expected = {}
    for m in milestones:
        if m.status == "in_progress":
            expected[f"due-{m.id}@milepost"] = m.due_at
        if m.status == "delivered":
            expected[f"review-{m.id}@milepost"] = m.review_due_at
    for lot in lots:
        expected[f"clears-{lot.id}@milepost"] = lot.available_at
    assert len(expected) >= 4  # due, review and clears are all represented
    assert {k.split("-")[0] for k in expected} == {"due", "review", "clears"}
    assert set(events) == set(expected)
    for uid, at in expected.items():
        assert events[uid].decoded("dtstart") == at
        assert str(events[uid]["summary"])
    # The buyer sees the same order deadlines, but not the seller's clearance dates.
    buyer_events = _events(runtime, h.buyer.id)
    assert not any(uid.startswith("clears-") for uid in buyer_events)
    assert any(uid.startswith("review-") for uid in buyer_events)
    assert_invariants(runtime)
