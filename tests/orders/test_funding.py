"""Funding modes (SPEC §2.2) and the sequential start of milestones (§2.3)."""

from __future__ import annotations

import pytest

from milepost.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, NotFound
from milepost.ledger.postings import PLATFORM_FEES, WORLD_PAYMENTS, escrow_account
from milepost.orders import service as orders
from tests.factories import assert_invariants, get_order, make_order
from tests.orders.helpers import (
    approve,
    deliver_and_approve,
    do,
    escrow,
    event_types,
    milestone_ids,
    people,
    row_counts,
    statuses,
    transfers,
)


def test_upfront_funding_pays_the_whole_order_into_escrow_and_starts_milestone_1(runtime, clock):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, funded=False)
    do(runtime, orders.fund, actor=p.buyer, order_id=order_id)
    order, ms = get_order(runtime, order_id)
    assert order.status == "active"
    assert [m.status for m in ms] == ["in_progress", "pending", "pending"]
    assert all(m.funded_amount == m.amount for m in ms)
    assert ms[0].started_at == clock.now() and ms[0].due_at is not None
    funds = transfers(runtime, order_id, kind="fund")
    assert [t["postings"] for t in funds] == [
        {WORLD_PAYMENTS: -a, escrow_account(order_id): a} for a in (10_000, 20_000, 30_000)]
    assert escrow(runtime, order_id) == 60_000
    assert event_types(runtime, order_id)[-7:] == [
        "transfer.fund", "milestone.funded", "transfer.fund", "milestone.funded", "transfer.fund",
        "milestone.funded", "milestone.started"]
    assert_invariants(runtime)


def test_upfront_order_cannot_be_funded_piecemeal(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, funded=False)
    first = milestone_ids(runtime, order_id)[0]
    before = row_counts(runtime)
    with pytest.raises(InvalidInput):
        do(runtime, orders.fund, actor=p.buyer, order_id=order_id, milestone_ids=[first])
    assert row_counts(runtime) == before


def test_per_milestone_funding_next_milestone_waits_unfunded(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, terms={"funding": "per_milestone"},
                          funded=False)
    do(runtime, orders.fund, actor=p.buyer, order_id=order_id)
    _order, ms = get_order(runtime, order_id)
    assert [m.status for m in ms] == ["in_progress", "pending", "pending"]
    assert [m.funded_amount for m in ms] == [10_000, 0, 0]
    assert escrow(runtime, order_id) == 10_000
    deliver_and_approve(runtime, p, order_id, ms[0].id)
    assert statuses(runtime, order_id)[1] == ["approved", "pending", "pending"]  # waits, unstarted
    assert "milestone.started" not in event_types(runtime, order_id)[-3:]
    do(runtime, orders.fund, actor=p.buyer, order_id=order_id)
    assert statuses(runtime, order_id)[1] == ["approved", "in_progress", "pending"]
    assert_invariants(runtime)


def test_per_milestone_funding_ahead_starts_next_at_once(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, terms={"funding": "per_milestone"},
                          funded=False)
    ids = milestone_ids(runtime, order_id)
    do(runtime, orders.fund, actor=p.buyer, order_id=order_id, milestone_ids=ids[:2])
    deliver_and_approve(runtime, p, order_id, ids[0])
    assert statuses(runtime, order_id)[1] == ["approved", "in_progress", "pending"]
    assert_invariants(runtime)


def test_later_milestone_funded_first_does_not_start_out_of_sequence(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, terms={"funding": "per_milestone"},
                          funded=False)
    ids = milestone_ids(runtime, order_id)
    do(runtime, orders.fund, actor=p.buyer, order_id=order_id, milestone_ids=[ids[2]])
    assert statuses(runtime, order_id) == ("agreed", ["pending", "pending", "pending"])
    assert_invariants(runtime)


def test_buyer_fee_is_charged_on_funding_rounded_up(runtime):
    p = people(runtime)
    runtime.settings.__dict__["default_terms"] = runtime.settings.default_terms.__class__(buyer_fee_bps=333)
    try:
        order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(1001,))
    finally:
        del runtime.settings.__dict__["default_terms"]
    (t,) = transfers(runtime, order_id, kind="fund")
    assert t["postings"][PLATFORM_FEES] == 34  # ceil(1001 * 333 / 10000) = ceil(33.33)
    assert t["postings"][WORLD_PAYMENTS] == -1035
    assert get_order(runtime, order_id)[1][0].buyer_fee_amount == 34
    assert_invariants(runtime)


def test_funding_twice_is_a_conflict(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    before = row_counts(runtime)
    with pytest.raises(Conflict):
        do(runtime, orders.fund, actor=p.buyer, order_id=order_id)
    with pytest.raises(Conflict):
        do(runtime, orders.fund, actor=p.buyer, order_id=order_id, milestone_ids=milestone_ids(runtime, order_id))
    assert row_counts(runtime) == before


def test_only_the_buyer_funds(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, funded=False)
    with pytest.raises(Forbidden):
        do(runtime, orders.fund, actor=p.seller, order_id=order_id)
    with pytest.raises(NotFound):
        do(runtime, orders.fund, actor=p.stranger, order_id=order_id)
    with pytest.raises(NotFound):
        do(runtime, orders.fund, actor=p.buyer, order_id=order_id, milestone_ids=["ms_nope"])
    assert transfers(runtime, order_id) == []


def test_proposed_order_cannot_be_funded(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, agreed=False)
    with pytest.raises(IllegalTransition):
        do(runtime, orders.fund, actor=p.buyer, order_id=order_id)
    assert transfers(runtime, order_id) == []


def test_milestone_starts_only_after_the_previous_one_is_approved(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    ids = milestone_ids(runtime, order_id)
    with pytest.raises(IllegalTransition):
        do(runtime, orders.deliver, actor=p.seller, order_id=order_id, milestone_id=ids[1], message="early")
    deliver_and_approve(runtime, p, order_id, ids[0])
    assert statuses(runtime, order_id)[1] == ["approved", "in_progress", "pending"]
    with pytest.raises(IllegalTransition):
        approve(runtime, p, order_id, ids[0])
    assert_invariants(runtime)


@pytest.mark.parametrize("bad", [123, "ms_abc", [1, 2], [{"id": "x"}], {"a": 1}])
def test_fund_with_malformed_milestone_ids_is_invalid_input(runtime, bad):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, funded=False,
                          terms={"funding": "per_milestone"})
    before = row_counts(runtime)
    with pytest.raises(InvalidInput):
        do(runtime, orders.fund, actor=p.buyer, order_id=order_id, milestone_ids=bad)
    assert row_counts(runtime) == before
