"""Fee rounding (SPEC §2.4): floor for the seller fee, ceil for the buyer fee, refunds tie out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.money import MAX_AMOUNT, buyer_fee, buyer_fee_refund, seller_fee

bps = st.integers(0, 10_000)


def test_seller_fee_rounds_down():
    assert seller_fee(999, 1000) == 99  # 99.9 -> 99: the seller never pays more than the rate
    assert seller_fee(1000, 1000) == 100
    assert seller_fee(1, 1000) == 0


def test_buyer_fee_rounds_up():
    assert buyer_fee(999, 1000) == 100  # 99.9 -> 100
    assert buyer_fee(1000, 1000) == 100
    assert buyer_fee(1, 1) == 1
    assert buyer_fee(0, 500) == 0


@given(st.integers(0, MAX_AMOUNT), bps)
def test_fees_are_exact_for_any_64_bit_amount(amount, rate):
    assert seller_fee(amount, rate) == amount * rate // 10_000
    assert buyer_fee(amount, rate) == -(-amount * rate // 10_000)
    assert 0 <= seller_fee(amount, rate) <= amount
    assert 0 <= buyer_fee(amount, rate) <= amount


@given(st.integers(1, 10**12), bps, st.lists(st.integers(1, 10**12), max_size=6))
def test_buyer_fee_refunds_sum_to_fee_on_refunded_part(funded, rate, cuts):
    """However the refunds are sliced, they return exactly fee(funded) - fee(kept)."""
    kept = funded
    returned = 0
    for cut in cuts:
        amount = min(cut, kept)
        fee_back = buyer_fee_refund(funded=funded, kept_before=kept, kept_after=kept - amount, bps=rate)
        assert fee_back >= 0
        returned += fee_back
        kept -= amount
    assert returned == buyer_fee(funded, rate) - buyer_fee(kept, rate)
    assert returned <= buyer_fee(funded, rate)


def test_full_refund_returns_the_whole_buyer_fee():
    assert buyer_fee_refund(funded=999, kept_before=999, kept_after=0, bps=1000) == buyer_fee(999, 1000)


@pytest.mark.parametrize(("before", "after"), [(50, 60), (120, 10), (10, -1)])
def test_buyer_fee_refund_refuses_growing_or_out_of_range_kept_amounts(before, after):
    with pytest.raises(ValueError):
        buyer_fee_refund(funded=100, kept_before=before, kept_after=after, bps=100)
