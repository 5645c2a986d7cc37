"""Disputes (SPEC §2.3): per milestone, negotiated, silence accepts, escalation, operator split."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeProposal
from milepost.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, NotFound
from milepost.ledger.postings import WORLD_REFUNDS, escrow_account
from milepost.orders import service as orders
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, get_order, make_order
from tests.orders.helpers import (
    deliver,
    deliver_and_approve,
    do,
    escrow,
    event_types,
    events_of,
    milestone_ids,
    people,
    row_counts,
    setup,
    statuses,
    transfers,
)


def open_(rt, actor, order_id, mid, seller_amount=4_000, reason="not as agreed"):
    return do(rt, disputes.open_dispute, actor=actor, order_id=order_id, milestone_id=mid, reason=reason,
              seller_amount=seller_amount)


def dispute_row(rt, dispute_id):
    with rt.reading() as ctx:
        return ctx.session.get(Dispute, dispute_id)


def money_of(rt, order_id, mid):
    rel = [t for t in transfers(rt, order_id, kind="release") if t["milestone_id"] == mid]
    ref = [t for t in transfers(rt, order_id, kind="refund") if t["milestone_id"] == mid]
    return (sum(-t["postings"][escrow_account(order_id)] for t in rel),
            sum(-t["postings"][escrow_account(order_id)] for t in ref))


def test_accepting_a_proposal_resolves_at_that_split(runtime):
    p, order_id, ids = setup(runtime)
    deliver(runtime, p, order_id, ids[0])
    d = open_(runtime, p.buyer, order_id, ids[0], seller_amount=4_000)
    assert statuses(runtime, order_id)[1][0] == "disputed"
    do(runtime, disputes.accept, actor=p.seller, dispute_id=d.id)
    row = dispute_row(runtime, d.id)
    assert (row.status, row.resolved_seller_amount, row.resolved_how) == ("resolved", 4_000, "agreement")
    assert money_of(runtime, order_id, ids[0]) == (4_000, 6_000)
    assert statuses(runtime, order_id)[1][:2] == ["resolved", "in_progress"]  # the order goes on
    assert event_types(runtime, order_id).count("dispute.resolved") == 1
    assert_invariants(runtime)


def test_counter_then_accept_uses_the_last_proposal(runtime):
    p, order_id, ids = setup(runtime)
    d = open_(runtime, p.seller, order_id, ids[0], seller_amount=10_000)
    do(runtime, disputes.counter, actor=p.buyer, dispute_id=d.id, seller_amount=3_000, note="a third")
    with pytest.raises(Conflict):
        do(runtime, disputes.accept, actor=p.buyer, dispute_id=d.id)  # own proposal
    do(runtime, disputes.counter, actor=p.seller, dispute_id=d.id, seller_amount=6_000)
    do(runtime, disputes.accept, actor=p.buyer, dispute_id=d.id)
    with runtime.reading() as ctx:
        proposals = ctx.session.scalars(select(DisputeProposal).where(DisputeProposal.dispute_id == d.id)
                                        .order_by(DisputeProposal.seq)).all()
    assert [x.seller_amount for x in proposals] == [10_000, 3_000, 6_000]
    assert money_of(runtime, order_id, ids[0]) == (6_000, 4_000)
    assert_invariants(runtime)


def test_opener_cannot_accept_or_counter_own_proposal(runtime):
    p, order_id, ids = setup(runtime)
    d = open_(runtime, p.buyer, order_id, ids[0])
    with pytest.raises(Conflict):
        do(runtime, disputes.accept, actor=p.buyer, dispute_id=d.id)
    with pytest.raises(Conflict):
        do(runtime, disputes.counter, actor=p.buyer, dispute_id=d.id, seller_amount=1)


def test_silence_accepts_the_last_proposal(runtime, clock):
    p, order_id, ids = setup(runtime)
    d = open_(runtime, p.buyer, order_id, ids[0], seller_amount=2_500)
    clock.advance(timedelta(days=4) - timedelta(seconds=1))
    run_due(runtime)
    assert dispute_row(runtime, d.id).status == "open"
    clock.advance(timedelta(seconds=1))
    run_due(runtime)
    row = dispute_row(runtime, d.id)
    assert (row.status, row.resolved_how, row.resolved_seller_amount) == ("resolved", "silence", 2_500)
    assert money_of(runtime, order_id, ids[0]) == (2_500, 7_500)
    assert_invariants(runtime)


def test_silence_timer_of_an_answered_proposal_does_nothing(runtime, clock):
    p, order_id, ids = setup(runtime)
    d = open_(runtime, p.buyer, order_id, ids[0], seller_amount=2_500)
    clock.advance(timedelta(days=3))
    do(runtime, disputes.counter, actor=p.seller, dispute_id=d.id, seller_amount=8_000)
    clock.advance(timedelta(days=1, hours=1))  # proposal 1's window passed; proposal 2's has not
    run_due(runtime)
    assert dispute_row(runtime, d.id).status == "open"
    assert money_of(runtime, order_id, ids[0]) == (0, 0)


def test_no_agreement_escalates_and_operator_resolves_with_any_split(runtime, clock):
    p, order_id, ids = setup(runtime)
    d = open_(runtime, p.buyer, order_id, ids[0], seller_amount=0)
    for _day, (who, amount) in enumerate([(p.seller, 9_000), (p.buyer, 1_000), (p.seller, 8_000)]):
        clock.advance(timedelta(days=2))
        do(runtime, disputes.counter, actor=who, dispute_id=d.id, seller_amount=amount)
        run_due(runtime)
    clock.advance(timedelta(days=1, seconds=1))  # 7 days since opening
    run_due(runtime)
    assert dispute_row(runtime, d.id).status == "escalated"
    assert "dispute.escalated" in event_types(runtime, order_id)
    clock.advance(timedelta(days=10))
    run_due(runtime)  # silence no longer accepts once escalated
    assert dispute_row(runtime, d.id).status == "escalated"
    with pytest.raises(Forbidden):
        do(runtime, disputes.resolve, actor=p.buyer, dispute_id=d.id, seller_amount=1)
    do(runtime, disputes.resolve, actor=p.operator, dispute_id=d.id, seller_amount=3_333, note="split")
    row = dispute_row(runtime, d.id)
    assert (row.status, row.resolved_how, row.resolved_by_id) == ("resolved", "operator", p.operator.id)
    assert money_of(runtime, order_id, ids[0]) == (3_333, 6_667)
    with pytest.raises(IllegalTransition):
        do(runtime, disputes.resolve, actor=p.operator, dispute_id=d.id, seller_amount=0)
    assert_invariants(runtime)


@pytest.mark.parametrize("seller_amount", [0, 10_000])
def test_operator_split_may_give_everything_to_either_side(runtime, seller_amount):
    p, order_id, ids = setup(runtime, amounts=(10_000,))
    d = open_(runtime, p.seller, order_id, ids[0])
    do(runtime, disputes.resolve, actor=p.operator, dispute_id=d.id, seller_amount=seller_amount)
    assert money_of(runtime, order_id, ids[0]) == (seller_amount, 10_000 - seller_amount)
    assert get_order(runtime, order_id)[0].status == ("completed" if seller_amount else "cancelled")
    assert_invariants(runtime)


def test_strangers_get_not_found(runtime):
    p, order_id, ids = setup(runtime)
    with pytest.raises(NotFound):
        open_(runtime, p.stranger, order_id, ids[0])
    d = open_(runtime, p.buyer, order_id, ids[0])
    for call, kw in [(disputes.accept, {}), (disputes.counter, {"seller_amount": 1}),
                     (disputes.resolve, {"seller_amount": 1})]:
        with pytest.raises(NotFound):
            do(runtime, call, actor=p.stranger, dispute_id=d.id, **kw)
    with pytest.raises(NotFound):
        do(runtime, disputes.accept, actor=p.seller, dispute_id="dsp_nope")


def test_bad_dispute_input_leaves_nothing_half_applied(runtime):
    p, order_id, ids = setup(runtime)
    before = row_counts(runtime)
    for amount in (-1, 10_001, 5.5, True):
        with pytest.raises(InvalidInput):
            open_(runtime, p.buyer, order_id, ids[0], seller_amount=amount)
    with pytest.raises(InvalidInput):
        open_(runtime, p.buyer, order_id, ids[0], reason="")
    with pytest.raises(IllegalTransition):
        open_(runtime, p.buyer, order_id, ids[1])  # pending: nothing to dispute
    assert row_counts(runtime) == before
    assert statuses(runtime, order_id)[1][0] == "in_progress"


def test_disputed_milestone_stops_auto_approve(runtime, clock):
    p, order_id, ids = setup(runtime, terms={"review_days": 3})
    deliver(runtime, p, order_id, ids[0])
    open_(runtime, p.seller, order_id, ids[0])
    clock.advance(timedelta(days=3, hours=12))  # past the review window, before silence (4 d)
    run_due(runtime)
    assert statuses(runtime, order_id)[1][0] == "disputed"
    assert transfers(runtime, order_id, kind="release") == []


def test_disputed_milestone_is_never_flagged_late(runtime, clock):
    p, order_id, ids = setup(runtime)  # due in 5 days, late after 6
    d = open_(runtime, p.seller, order_id, ids[0])
    clock.advance(timedelta(days=3))
    do(runtime, disputes.counter, actor=p.buyer, dispute_id=d.id, seller_amount=5_000)
    clock.advance(timedelta(days=3, hours=12))
    run_due(runtime)
    assert statuses(runtime, order_id)[1][0] == "disputed"
    assert events_of(runtime, order_id, "milestone.late") == []


def test_only_the_disputed_milestones_money_is_locked(runtime, clock):
    from milepost.payouts import service as payouts

    p, order_id, ids = setup(runtime, terms={"funding": "per_milestone"})
    deliver_and_approve(runtime, p, order_id, ids[0])
    clock.advance(timedelta(days=7))
    do(runtime, orders.fund, actor=p.buyer, order_id=order_id)
    d = open_(runtime, p.buyer, order_id, ids[1], seller_amount=5_000)
    # The rest of the order proceeds: funding ahead, clearing of earlier money, payouts.
    do(runtime, orders.fund, actor=p.buyer, order_id=order_id)
    run_due(runtime)
    assert escrow(runtime, order_id) == 50_000
    do(runtime, payouts.create_payout, actor=p.seller, amount=9_000, currency="USD")
    do(runtime, disputes.accept, actor=p.seller, dispute_id=d.id)
    assert statuses(runtime, order_id)[1] == ["approved", "resolved", "in_progress"]
    refunds = transfers(runtime, order_id, kind="refund")
    assert [t["postings"][WORLD_REFUNDS] for t in refunds] == [15_000]
    assert escrow(runtime, order_id) == 30_000
    assert_invariants(runtime)


def test_dispute_cannot_open_twice_on_one_milestone(runtime):
    p, order_id, ids = setup(runtime)
    open_(runtime, p.buyer, order_id, ids[0])
    with pytest.raises(IllegalTransition):
        open_(runtime, p.seller, order_id, ids[0])


def test_on_completion_dispute_resolution_releases_everything_owed_when_the_order_ends(runtime):
    p, order_id, ids = setup(runtime, amounts=(10_000, 20_000), terms={"release": "on_completion"})
    deliver_and_approve(runtime, p, order_id, ids[0])
    assert transfers(runtime, order_id, kind="release") == []
    d = open_(runtime, p.buyer, order_id, ids[1], seller_amount=5_000)
    do(runtime, disputes.accept, actor=p.seller, dispute_id=d.id)
    assert statuses(runtime, order_id) == ("completed", ["approved", "resolved"])
    assert money_of(runtime, order_id, ids[0]) == (10_000, 0)
    assert money_of(runtime, order_id, ids[1]) == (5_000, 15_000)
    assert escrow(runtime, order_id) == 0
    assert_invariants(runtime)


def test_dispute_split_refunds_buyer_fee_only_on_the_refunded_part(runtime):
    from milepost.ledger.postings import PLATFORM_FEES

    p = people(runtime)
    runtime.settings.__dict__["default_terms"] = runtime.settings.default_terms.__class__(buyer_fee_bps=250)
    try:
        order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(10_001,))
    finally:
        del runtime.settings.__dict__["default_terms"]
    mid = milestone_ids(runtime, order_id)[0]
    d = open_(runtime, p.buyer, order_id, mid, seller_amount=3_333)
    do(runtime, disputes.resolve, actor=p.operator, dispute_id=d.id, seller_amount=3_333)
    (fund,) = transfers(runtime, order_id, kind="fund")
    (refund,) = transfers(runtime, order_id, kind="refund")
    charged = fund["postings"][PLATFORM_FEES]
    returned = -refund["postings"][PLATFORM_FEES]
    assert charged == 251  # ceil(10001 * 2.5 %)
    assert charged - returned == 84  # the buyer keeps paying ceil(3333 * 2.5 %) on what the seller got
    assert refund["postings"][WORLD_REFUNDS] == 6_668 + returned
    assert_invariants(runtime)
