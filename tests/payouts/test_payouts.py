"""Payouts (SPEC §2.4): up to the available balance, at least the minimum, through the provider."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from milepost.errors import Conflict, InvalidInput
from milepost.ledger.postings import WORLD_PAYOUTS, available_account
from milepost.payouts import service as payouts
from milepost.payouts.models import Payout
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, make_order
from tests.orders.helpers import (
    available,
    deliver_and_approve,
    do,
    milestone_ids,
    people,
    row_counts,
    transfers,
)


def seller_with_available(rt, clock, amounts=(10_000,)):
    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller, amounts=amounts)
    for mid in milestone_ids(rt, order_id):
        deliver_and_approve(rt, p, order_id, mid)
    clock.advance(timedelta(days=7))
    run_due(rt)
    return p


def test_payout_withdraws_available_money(runtime, clock):
    p = seller_with_available(runtime, clock)
    assert available(runtime, p.seller) == 9_000
    payout = do(runtime, payouts.create_payout, actor=p.seller, amount=6_000, currency="USD")
    assert available(runtime, p.seller) == 3_000
    (t,) = transfers(runtime, kind="payout")
    assert t["postings"] == {available_account(p.seller.id): -6_000, WORLD_PAYOUTS: 6_000}
    with runtime.reading() as ctx:
        row = ctx.session.scalars(select(Payout)).one()
    assert (row.id, row.amount, row.status, row.provider) == (payout.id, 6_000, "paid", "sandbox")
    assert_invariants(runtime)


def test_payout_of_the_whole_balance(runtime, clock):
    p = seller_with_available(runtime, clock)
    do(runtime, payouts.create_payout, actor=p.seller, amount=9_000, currency="USD")
    assert available(runtime, p.seller) == 0
    assert_invariants(runtime)


def test_payout_beyond_available_is_a_conflict(runtime, clock):
    p = seller_with_available(runtime, clock)
    before = row_counts(runtime)
    with pytest.raises(Conflict) as exc:
        do(runtime, payouts.create_payout, actor=p.seller, amount=9_001, currency="USD")
    assert exc.value.code == "insufficient_available" and exc.value.extra["available"] == 9_000
    assert row_counts(runtime) == before


def test_clearing_money_cannot_be_paid_out(runtime, clock):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    deliver_and_approve(runtime, p, order_id, milestone_ids(runtime, order_id)[0])
    with pytest.raises(Conflict):
        do(runtime, payouts.create_payout, actor=p.seller, amount=1_000, currency="USD")


def test_payout_below_the_minimum_is_refused(runtime, clock):
    p = seller_with_available(runtime, clock)
    with pytest.raises(InvalidInput) as exc:
        do(runtime, payouts.create_payout, actor=p.seller, amount=999, currency="USD")
    assert "minimum" in exc.value.message
    do(runtime, payouts.create_payout, actor=p.seller, amount=1_000, currency="USD")


@pytest.mark.parametrize(("amount", "currency"), [(0, "USD"), (-5, "USD"), (True, "USD"), (10.0, "USD"),
                                                  (2**63, "USD"), (1_000, "XXQ"), (1_000, "usd")])
def test_invalid_payouts_are_refused_and_write_nothing(runtime, clock, amount, currency):
    p = people(runtime)
    before = row_counts(runtime)
    with pytest.raises(InvalidInput):
        do(runtime, payouts.create_payout, actor=p.seller, amount=amount, currency=currency)
    assert row_counts(runtime) == before
