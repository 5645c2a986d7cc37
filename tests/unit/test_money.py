"""Money: integer minor units, ISO 4217 precision from Babel, never mixing currencies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.money import (
    MAX_AMOUNT,
    CurrencyMismatch,
    Money,
    currency_digits,
    major_unit,
    split_evenly,
    to_decimal_string,
)


@pytest.mark.parametrize(("code", "digits"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("BHD", 3)])
def test_currency_precision_comes_from_iso_4217(code, digits):
    assert currency_digits(code) == digits
    assert major_unit(code) == 10**digits


@pytest.mark.parametrize("code", ["usd", "XXXX", "ZZZ", "", None, 12])
def test_unknown_currency_is_refused(code):
    with pytest.raises((ValueError, TypeError)):
        Money(100, code)


@pytest.mark.parametrize("amount", [1.5, 1.0, "100", True, False, None])
def test_money_amount_must_be_an_integer_never_a_float_or_bool(amount):
    with pytest.raises(TypeError):
        Money(amount, "USD")


def test_money_amount_must_fit_64_bits():
    Money(MAX_AMOUNT, "USD")
    with pytest.raises(ValueError):
        Money(MAX_AMOUNT + 1, "USD")
    with pytest.raises(ValueError):
        Money(2**64, "USD")


def test_money_adds_and_compares_within_one_currency():
    assert Money(150, "USD") + Money(50, "USD") == Money(200, "USD")
    assert Money(150, "USD") - Money(50, "USD") == Money(100, "USD")
    assert -Money(5, "USD") == Money(-5, "USD")
    assert Money(1, "USD") < Money(2, "USD") <= Money(2, "USD")
    assert Money(3, "USD") > Money(2, "USD") >= Money(2, "USD")


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_money_refuses_to_mix_currencies(op):
    with pytest.raises(CurrencyMismatch):
        op(Money(100, "USD"), Money(100, "EUR"))


def test_money_refuses_to_combine_with_plain_numbers():
    with pytest.raises(TypeError):
        Money(100, "USD") + 5  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        (" 7 ", "USD", 700),
        ("1500", "JPY", 1500),
        ("1.234", "BHD", 1234),
        ("0.01", "USD", 1),
    ],
)
def test_parse_reads_major_units_into_minor_units(text, code, minor):
    assert Money.parse(text, code) == Money(minor, code)


@pytest.mark.parametrize(
    ("text", "code"),
    [("12.505", "USD"), ("1.5", "JPY"), ("1.2345", "BHD"), ("abc", "USD"), ("", "USD"),
     ("NaN", "USD"), ("Infinity", "USD"), ("1e30", "USD"), ("1e2", "USD"), ("1_000", "USD"),
     ("1_0.5_0", "USD"), ("\u0661\u0662", "USD"), ("1,000", "USD"), (None, "USD")],
)
def test_parse_refuses_excess_precision_and_non_numbers(text, code):
    with pytest.raises(ValueError):
        Money.parse(text, code)


def test_money_formats_with_the_currency_digits():
    assert str(Money(1250, "USD")) == "12.50 USD"
    assert str(Money(1500, "JPY")) == "1500 JPY"
    assert str(Money(1234, "BHD")) == "1.234 BHD"
    assert to_decimal_string(-5, "USD") == "-0.05"
    assert to_decimal_string(7, "JPY") == "7"


@given(st.integers(0, MAX_AMOUNT), st.sampled_from(["USD", "JPY", "BHD"]))
def test_parse_and_decimal_string_round_trip(amount, code):
    assert Money.parse(to_decimal_string(amount, code), code).amount == amount


@given(st.integers(0, 10**15), st.integers(1, 200))
def test_split_evenly_sums_exactly_and_differs_by_at_most_one(total, parts):
    shares = split_evenly(total, parts)
    assert len(shares) == parts
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)  # the remainder goes to the first parts


def test_split_evenly_refuses_zero_parts_and_negative_totals():
    with pytest.raises(ValueError):
        split_evenly(100, 0)
    with pytest.raises(ValueError):
        split_evenly(-1, 2)
