"""Cancel the rest (SPEC §2.3) in every variant, with the money it moves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from milepost.disputes import service as disputes
from milepost.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from milepost.ledger.postings import PLATFORM_FEES, WORLD_REFUNDS, clearing_account, escrow_account
from milepost.orders import service as orders
from tests.factories import assert_invariants, get_order, make_order
from tests.orders.helpers import (
    clearing,
    deliver,
    deliver_and_approve,
    do,
    escrow,
    event_types,
    events_of,
    people,
    row_counts,
    setup,
    statuses,
    transfers,
)


def cancel(rt, actor, order_id, reason="stop"):
    return do(rt, orders.cancel, actor=actor, order_id=order_id, reason=reason)


def refunds_by_milestone(rt, order_id):
    return {t["milestone_id"]: t["postings"][WORLD_REFUNDS] for t in transfers(rt, order_id, kind="refund")}


def test_buyer_cancel_pays_kill_fee_on_running_milestone_and_refunds_the_rest(runtime):
    p, order_id, ids = setup(runtime, terms={"kill_fee_bps": 2500})
    cancel(runtime, p.buyer, order_id)
    assert statuses(runtime, order_id) == ("completed", ["cancelled"] * 3)  # the kill fee paid the seller
    (release,) = transfers(runtime, order_id, kind="release")
    assert release["milestone_id"] == ids[0]
    assert release["postings"] == {escrow_account(order_id): -2500, clearing_account(p.seller.id): 2250,
                                   PLATFORM_FEES: 250}
    assert refunds_by_milestone(runtime, order_id) == {ids[0]: 7500, ids[1]: 20_000, ids[2]: 30_000}
    cancelled = events_of(runtime, order_id, "milestone.cancelled")
    assert [(e["seq"], e["kill_fee_amount"], e["refund_amount"]) for e in cancelled] == [
        (1, 2500, 7500), (2, 0, 20_000), (3, 0, 30_000)]
    assert escrow(runtime, order_id) == 0
    assert_invariants(runtime)


def test_kill_fee_not_owed_when_milestone_is_late(runtime, clock):
    p, order_id, ids = setup(runtime, terms={"kill_fee_bps": 2500})
    clock.advance(timedelta(days=6, seconds=1))  # due 5 d + 24 h grace, then some
    cancel(runtime, p.buyer, order_id)
    assert transfers(runtime, order_id, kind="release") == []
    assert refunds_by_milestone(runtime, order_id)[ids[0]] == 10_000
    assert get_order(runtime, order_id)[0].status == "cancelled"
    assert_invariants(runtime)


def test_seller_cancel_refunds_all(runtime):
    p, order_id, _ = setup(runtime, terms={"kill_fee_bps": 5000})
    cancel(runtime, p.seller, order_id)
    assert transfers(runtime, order_id, kind="release") == []
    assert sum(refunds_by_milestone(runtime, order_id).values()) == 60_000
    order, _ = get_order(runtime, order_id)
    assert order.status == "cancelled" and order.cancelled_by_id == p.seller.id
    assert_invariants(runtime)


def test_cancel_blocked_by_delivered_milestone(runtime):
    p, order_id, ids = setup(runtime)
    deliver(runtime, p, order_id, ids[0])
    before = row_counts(runtime)
    for actor in (p.buyer, p.seller):
        with pytest.raises(IllegalTransition) as exc:
            cancel(runtime, actor, order_id)
        assert exc.value.status == 409 and exc.value.code == "cancel_blocked_by_delivery"
        assert "#1" in exc.value.message
    assert row_counts(runtime) == before


def test_cancel_leaves_approved_milestones_paid(runtime):
    p, order_id, ids = setup(runtime)
    deliver_and_approve(runtime, p, order_id, ids[0])
    cancel(runtime, p.buyer, order_id)
    order, ms = get_order(runtime, order_id)
    assert [m.status for m in ms] == ["approved", "cancelled", "cancelled"]
    assert order.status == "completed"
    assert ms[0].released_amount == 10_000 and ms[0].refunded_amount == 0
    assert clearing(runtime, p.seller) == 9_000
    assert_invariants(runtime)


def test_cancel_before_funding_refunds_nothing_and_cancels_the_order(runtime):
    p, order_id, _ = setup(runtime, funded=False)
    cancel(runtime, p.buyer, order_id)
    assert statuses(runtime, order_id) == ("cancelled", ["cancelled"] * 3)
    assert transfers(runtime, order_id) == []
    assert_invariants(runtime)


def test_per_milestone_cancel_refunds_only_what_was_funded(runtime):
    p, order_id, ids = setup(runtime, terms={"funding": "per_milestone", "kill_fee_bps": 1000})
    cancel(runtime, p.buyer, order_id)
    assert refunds_by_milestone(runtime, order_id) == {ids[0]: 9_000}
    assert statuses(runtime, order_id) == ("completed", ["cancelled"] * 3)
    assert_invariants(runtime)


def test_cancel_refunds_buyer_fee_in_proportion(runtime):
    p = people(runtime)
    runtime.settings.__dict__["default_terms"] = runtime.settings.default_terms.__class__(
        buyer_fee_bps=333, kill_fee_bps=3333)
    try:
        order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(1001, 999))
    finally:
        del runtime.settings.__dict__["default_terms"]
    charged = sum(t["postings"][PLATFORM_FEES] for t in transfers(runtime, order_id, kind="fund"))
    assert charged == 34 + 34
    cancel(runtime, p.buyer, order_id)
    fee_back = -sum(t["postings"].get(PLATFORM_FEES, 0) for t in transfers(runtime, order_id, kind="refund"))
    kill_fee = 1001 * 3333 // 10_000  # 333, kept by the seller
    assert fee_back == charged - (-(-kill_fee * 333 // 10_000))  # fee kept only on the kill fee
    assert_invariants(runtime)


def test_disputed_milestone_waits_while_the_rest_is_cancelled(runtime):
    p, order_id, ids = setup(runtime)
    dispute = do(runtime, disputes.open_dispute, actor=p.buyer, order_id=order_id, milestone_id=ids[0],
                 reason="wrong colours", seller_amount=2_000)
    cancel(runtime, p.buyer, order_id)
    assert statuses(runtime, order_id) == ("active", ["disputed", "cancelled", "cancelled"])
    assert escrow(runtime, order_id) == 10_000  # only the disputed milestone's money stays locked
    assert "order.cancel_pending_dispute" in event_types(runtime, order_id)
    assert_invariants(runtime)
    with pytest.raises(IllegalTransition):
        cancel(runtime, p.buyer, order_id)
    do(runtime, disputes.accept, actor=p.seller, dispute_id=dispute.id)
    assert statuses(runtime, order_id) == ("completed", ["resolved", "cancelled", "cancelled"])
    assert escrow(runtime, order_id) == 0
    assert_invariants(runtime)


def test_cancelling_an_ended_order_is_illegal(runtime):
    p, order_id, _ = setup(runtime)
    cancel(runtime, p.seller, order_id)
    with pytest.raises(IllegalTransition):
        cancel(runtime, p.buyer, order_id)


def test_cancel_needs_a_party_and_a_reason(runtime):
    p, order_id, _ = setup(runtime)
    before = row_counts(runtime)
    with pytest.raises(NotFound):
        cancel(runtime, p.stranger, order_id)
    with pytest.raises(Forbidden):
        cancel(runtime, p.operator, order_id)
    with pytest.raises(InvalidInput):
        cancel(runtime, p.buyer, order_id, reason="")
    assert row_counts(runtime) == before


def test_cancel_preview_matches_cancel(runtime):
    p, order_id, _ = setup(runtime, terms={"kill_fee_bps": 2500})
    with runtime.reading() as ctx:
        preview = orders.cancel_preview(ctx, actor=p.buyer, order_id=order_id)
    assert [(d.seq, d.seller_amount, d.refund_amount) for d in preview] == [
        (1, 2500, 7500), (2, 0, 20_000), (3, 0, 30_000)]
