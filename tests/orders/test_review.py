"""Deliver, request a revision, approve, auto-approve, lateness (SPEC §2.3) and release (§2.4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from milepost.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, NotFound
from milepost.ledger.models import ClearingLot
from milepost.ledger.postings import PLATFORM_FEES, clearing_account, escrow_account
from milepost.orders import service as orders
from milepost.orders.models import Delivery, DeliveryFile
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, get_order
from tests.orders.helpers import (
    approve,
    available,
    clearing,
    deliver,
    deliver_and_approve,
    do,
    escrow,
    event_types,
    events_of,
    row_counts,
    setup,
    statuses,
    transfers,
)


def test_deliver_sets_review_deadline_and_keeps_every_attempt(runtime, clock):
    p, order_id, ids = setup(runtime)
    files = [orders.UploadedFile("../../etc/page1.png", "image/png", b"\x89PNG...")]
    do(runtime, orders.deliver, actor=p.seller, order_id=order_id, milestone_id=ids[0], message="v1",
       files=files)
    _, ms = get_order(runtime, order_id)
    assert ms[0].status == "delivered" and ms[0].delivered_at == clock.now()
    assert ms[0].review_due_at == clock.now() + timedelta(days=7)
    do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=ids[0],
       reason="logo too small")
    deliver(runtime, p, order_id, ids[0], message="v2")
    with runtime.reading() as ctx:
        attempts = ctx.session.scalars(select(Delivery).where(Delivery.milestone_id == ids[0])
                                       .order_by(Delivery.attempt)).all()
        stored = ctx.session.scalars(select(DeliveryFile)).all()
    assert [(d.attempt, d.message, d.revision_reason) for d in attempts] == [
        (1, "v1", "logo too small"), (2, "v2", None)]
    assert len(stored) == 1 and "/" not in stored[0].filename and ".." not in stored[0].filename
    assert runtime.files.read(stored[0].sha256) == b"\x89PNG..."
    assert event_types(runtime, order_id)[-3:] == [
        "milestone.delivered", "milestone.revision_requested", "milestone.delivered"]


def test_only_the_seller_delivers_with_a_message(runtime):
    p, order_id, ids = setup(runtime)
    with pytest.raises(Forbidden):
        do(runtime, orders.deliver, actor=p.buyer, order_id=order_id, milestone_id=ids[0], message="x")
    with pytest.raises(NotFound):
        do(runtime, orders.deliver, actor=p.stranger, order_id=order_id, milestone_id=ids[0], message="x")
    before = row_counts(runtime)
    for bad in ("", "   ", "nul\x00byte"):
        with pytest.raises(InvalidInput):
            do(runtime, orders.deliver, actor=p.seller, order_id=order_id, milestone_id=ids[0], message=bad)
    assert row_counts(runtime) == before
    assert statuses(runtime, order_id)[1][0] == "in_progress"


def test_approve_releases_money_minus_floor_fee_into_a_clearing_lot(runtime, clock):
    p, order_id, ids = setup(runtime, amounts=(9_999, 10_000))
    deliver_and_approve(runtime, p, order_id, ids[0])
    (release,) = transfers(runtime, order_id, kind="release")
    assert release["postings"] == {escrow_account(order_id): -9_999, clearing_account(p.seller.id): 9_000,
                                   PLATFORM_FEES: 999}
    with runtime.reading() as ctx:
        (lot,) = ctx.session.scalars(select(ClearingLot)).all()
    assert (lot.gross_amount, lot.fee_amount, lot.amount) == (9_999, 999, 9_000)
    assert lot.available_at == clock.now() + timedelta(days=7)
    assert escrow(runtime, order_id) == 10_000
    assert clearing(runtime, p.seller) == 9_000
    assert statuses(runtime, order_id)[1] == ["approved", "in_progress"]
    assert "milestone.approved" in event_types(runtime, order_id)
    assert_invariants(runtime)


def test_only_the_buyer_approves(runtime):
    p, order_id, ids = setup(runtime)
    deliver(runtime, p, order_id, ids[0])
    with pytest.raises(Forbidden):
        do(runtime, orders.approve, actor=p.seller, order_id=order_id, milestone_id=ids[0])
    with pytest.raises(Forbidden):
        do(runtime, orders.approve, actor=p.operator, order_id=order_id, milestone_id=ids[0])
    with pytest.raises(NotFound):
        do(runtime, orders.approve, actor=p.stranger, order_id=order_id, milestone_id=ids[0])
    assert transfers(runtime, order_id, kind="release") == []


def test_approving_an_undelivered_milestone_is_illegal(runtime):
    p, order_id, ids = setup(runtime)
    with pytest.raises(IllegalTransition) as exc:
        approve(runtime, p, order_id, ids[0])
    assert exc.value.status == 409
    assert transfers(runtime, order_id, kind="release") == []


def test_revision_moves_due_date_by_turnaround_rule(runtime, clock):
    p, order_id, ids = setup(runtime)  # due_days=5
    started = clock.now()
    clock.advance(timedelta(days=4))
    deliver(runtime, p, order_id, ids[0])
    clock.advance(timedelta(days=1))
    do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=ids[0], reason="fix")
    m = get_order(runtime, order_id)[1][0]
    assert m.status == "in_progress" and m.revisions_used == 1 and m.review_due_at is None
    assert m.due_at == clock.now() + timedelta(days=3)  # max(start+5d, now+3d)
    assert m.due_at > started + timedelta(days=5)


def test_revision_cap_returns_409_with_what_the_buyer_can_do(runtime):
    p, order_id, ids = setup(runtime, terms={"revisions": 1})
    deliver(runtime, p, order_id, ids[0])
    do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=ids[0], reason="1")
    deliver(runtime, p, order_id, ids[0])
    before = row_counts(runtime)
    with pytest.raises(Conflict) as exc:
        do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=ids[0], reason="2")
    assert exc.value.code == "revision_limit_reached" and "dispute" in exc.value.message
    assert row_counts(runtime) == before
    assert get_order(runtime, order_id)[1][0].status == "delivered"


def test_revision_needs_a_reason_and_a_delivery(runtime):
    p, order_id, ids = setup(runtime)
    with pytest.raises(IllegalTransition):
        do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=ids[0], reason="x")
    deliver(runtime, p, order_id, ids[0])
    with pytest.raises(InvalidInput):
        do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=ids[0], reason=" ")
    with pytest.raises(Forbidden):
        do(runtime, orders.request_revision, actor=p.seller, order_id=order_id, milestone_id=ids[0], reason="x")


def test_auto_approve_when_review_window_passes(runtime, clock):
    p, order_id, ids = setup(runtime)
    deliver(runtime, p, order_id, ids[0])
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    run_due(runtime)
    assert statuses(runtime, order_id)[1][0] == "delivered"
    clock.advance(timedelta(seconds=1))
    run_due(runtime)
    assert statuses(runtime, order_id)[1][:2] == ["approved", "in_progress"]
    (approved,) = events_of(runtime, order_id, "milestone.approved")
    assert approved["auto"] is True
    assert len(transfers(runtime, order_id, kind="release")) == 1
    assert_invariants(runtime)


def test_auto_approve_timer_of_an_earlier_delivery_does_nothing(runtime, clock):
    p, order_id, ids = setup(runtime)
    deliver(runtime, p, order_id, ids[0])
    clock.advance(timedelta(days=1))
    do(runtime, orders.request_revision, actor=p.buyer, order_id=order_id, milestone_id=ids[0], reason="x")
    clock.advance(timedelta(days=1))
    deliver(runtime, p, order_id, ids[0])
    clock.advance(timedelta(days=6))  # the first delivery's window has passed, the second's not
    run_due(runtime)
    assert statuses(runtime, order_id)[1][0] == "delivered"
    clock.advance(timedelta(days=1))
    run_due(runtime)
    assert statuses(runtime, order_id)[1][0] == "approved"
    assert_invariants(runtime)


def test_lateness_event_after_grace_period(runtime, clock):
    _p, order_id, _ids = setup(runtime)  # due in 5 days, late after 6
    clock.advance(timedelta(days=6))
    run_due(runtime)
    assert events_of(runtime, order_id, "milestone.late") == []
    clock.advance(timedelta(seconds=1))
    run_due(runtime)
    (late,) = events_of(runtime, order_id, "milestone.late")
    assert late["seq"] == 1


def test_delivered_milestone_is_not_flagged_late(runtime, clock):
    p, order_id, ids = setup(runtime)
    deliver(runtime, p, order_id, ids[0])
    clock.advance(timedelta(days=6, hours=1))
    run_due(runtime)
    assert events_of(runtime, order_id, "milestone.late") == []


def test_clearing_lot_becomes_available_on_its_date(runtime, clock):
    p, order_id, ids = setup(runtime, amounts=(10_000,))
    deliver_and_approve(runtime, p, order_id, ids[0])
    assert (clearing(runtime, p.seller), available(runtime, p.seller)) == (9_000, 0)
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    run_due(runtime)
    assert (clearing(runtime, p.seller), available(runtime, p.seller)) == (9_000, 0)
    clock.advance(timedelta(seconds=1))
    run_due(runtime)
    assert (clearing(runtime, p.seller), available(runtime, p.seller)) == (0, 9_000)
    assert [t["kind"] for t in transfers(runtime, order_id)] == ["fund", "release", "clear"]
    run_due(runtime)  # firing again changes nothing
    assert len(transfers(runtime, order_id, kind="clear")) == 1
    assert_invariants(runtime)


def test_zero_clearance_makes_money_available_at_once(runtime):
    p, order_id, ids = setup(runtime, amounts=(10_000,), terms={"clearance_days": 0})
    deliver_and_approve(runtime, p, order_id, ids[0])
    assert (clearing(runtime, p.seller), available(runtime, p.seller)) == (0, 9_000)
    assert get_order(runtime, order_id)[0].status == "completed"
    assert_invariants(runtime)


def test_order_completes_when_every_milestone_is_approved(runtime):
    p, order_id, ids = setup(runtime)
    for mid in ids:
        deliver_and_approve(runtime, p, order_id, mid)
    order, _ms = get_order(runtime, order_id)
    assert order.status == "completed" and order.ended_at is not None
    assert escrow(runtime, order_id) == 0
    assert event_types(runtime, order_id)[-1] == "order.completed"
    assert_invariants(runtime)


def test_on_completion_release_holds_money_until_order_ends(runtime, clock):
    p, order_id, ids = setup(runtime, terms={"release": "on_completion"})
    deliver_and_approve(runtime, p, order_id, ids[0])
    deliver_and_approve(runtime, p, order_id, ids[1])
    assert transfers(runtime, order_id, kind="release") == []
    assert escrow(runtime, order_id) == 60_000
    assert clearing(runtime, p.seller) == 0
    assert [m.held_for_seller_amount for m in get_order(runtime, order_id)[1]] == [10_000, 20_000, 0]
    assert_invariants(runtime)
    deliver_and_approve(runtime, p, order_id, ids[2])
    releases = transfers(runtime, order_id, kind="release")
    assert [t["postings"][escrow_account(order_id)] for t in releases] == [-10_000, -20_000, -30_000]
    assert escrow(runtime, order_id) == 0
    assert clearing(runtime, p.seller) == 54_000
    assert get_order(runtime, order_id)[0].status == "completed"
    assert_invariants(runtime)


def test_on_completion_release_pays_out_approved_work_when_the_rest_is_cancelled(runtime):
    p, order_id, ids = setup(runtime, terms={"release": "on_completion", "kill_fee_bps": 1000})
    deliver_and_approve(runtime, p, order_id, ids[0])
    do(runtime, orders.cancel, actor=p.buyer, order_id=order_id, reason="budget cut")
    releases = transfers(runtime, order_id, kind="release")
    assert sorted(-t["postings"][escrow_account(order_id)] for t in releases) == [2_000, 10_000]
    assert escrow(runtime, order_id) == 0
    assert get_order(runtime, order_id)[0].status == "completed"
    assert_invariants(runtime)
