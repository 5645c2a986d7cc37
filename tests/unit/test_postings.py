"""Postings per money movement (SPEC §2.4–2.5): every transfer sums to zero."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.ledger import postings as p


def test_fund_moves_money_and_buyer_fee_in():
    t = p.fund(order_id="o1", currency="USD", amount=10_000, buyer_fee_amount=300)
    assert t.amount_for(p.WORLD_PAYMENTS) == -10_300
    assert t.amount_for("escrow:order:o1") == 10_000
    assert t.amount_for(p.PLATFORM_FEES) == 300


def test_release_pays_seller_net_and_platform_floor_fee():
    r = p.release(order_id="o1", seller_id="s1", currency="USD", amount=999, seller_fee_bps=1000)
    assert (r.gross, r.fee, r.net) == (999, 99, 900)
    assert r.transfer.amount_for("escrow:order:o1") == -999
    assert r.transfer.amount_for("seller:s1:clearing") == 900
    assert r.transfer.amount_for(p.PLATFORM_FEES) == 99


def test_refund_returns_buyer_fee_on_refunded_part():
    r = p.refund(order_id="o1", currency="USD", amount=10_000, funded=10_000, kept_before=10_000,
                 buyer_fee_bps=300)
    assert r.buyer_fee_refund == 300
    assert r.transfer.amount_for(p.WORLD_REFUNDS) == 10_300


def test_clear_and_payout():
    assert p.clear(seller_id="s", currency="USD", amount=5).amount_for("seller:s:available") == 5
    assert p.payout(seller_id="s", currency="USD", amount=5).amount_for(p.WORLD_PAYOUTS) == 5


def test_zero_postings_are_dropped():
    t = p.fund(order_id="o1", currency="USD", amount=100, buyer_fee_amount=0)
    assert len(t.postings) == 2


def test_unbalanced_or_single_posting_transfer_is_refused():
    with pytest.raises(ValueError):
        p.TransferSpec(p.TransferKind.FUND, "USD", (p.Posting("a", 1), p.Posting("b", 2)))
    with pytest.raises(ValueError):
        p.TransferSpec(p.TransferKind.FUND, "USD", (p.Posting("a", 0),))


def test_accounts_that_must_not_go_negative():
    assert p.must_not_go_negative(p.escrow_account("o"))
    assert p.must_not_go_negative(p.clearing_account("s"))
    assert p.must_not_go_negative(p.available_account("s"))
    assert not p.must_not_go_negative(p.WORLD_PAYMENTS)


@given(st.integers(1, 10**12), st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10**12))
def test_postings_sum_to_zero_for_every_movement(amount, seller_bps, buyer_bps, share_seed):
    seller_share = share_seed % (amount + 1)
    fee = -(-amount * buyer_bps // 10_000)
    specs = [
        p.fund(order_id="o", currency="USD", amount=amount, buyer_fee_amount=fee),
        p.release(order_id="o", seller_id="s", currency="USD", amount=amount, seller_fee_bps=seller_bps).transfer,
        p.refund(order_id="o", currency="USD", amount=amount - seller_share, funded=amount, kept_before=amount,
                 buyer_fee_bps=buyer_bps).transfer if amount - seller_share else None,
        p.clear(seller_id="s", currency="USD", amount=amount),
        p.payout(seller_id="s", currency="USD", amount=amount),
    ]
    for spec in specs:
        if spec is not None:
            assert sum(x.amount for x in spec.postings) == 0
