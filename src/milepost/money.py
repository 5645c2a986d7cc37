"""Money as an integer count of a currency's minor units.

Never floats. `Decimal` appears only at the edges (parsing a user's "12.50", formatting for display).
Every rounding rule of the product lives here, so fees and splits always tie out to the minor unit:

* seller fee on a release of A: ``floor(A * bps / 10000)`` — the seller never pays a fraction more than
  the stated rate;
* buyer fee on funding A: ``ceil(A * bps / 10000)``;
* buyer-fee refunds are *cumulative*: after refunds the buyer has paid ``ceil(kept * bps / 10000)`` in
  fees, where ``kept`` is what stayed with the seller; each refund returns the difference between the
  fee held before and after it, so the refunded parts always sum exactly to the fee charged minus the
  fee on what was kept;
* kill fee on a cancelled milestone of A: ``floor(A * kill_fee_bps / 10000)`` (rounds for the buyer);
* an even split of a total into N parts gives the remainder, one minor unit each, to the first parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

MAX_AMOUNT = 2**63 - 1
# Plain ASCII decimals only: Decimal() alone would also take "1_0.5_0" (10.50) and non-ASCII digits.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
BPS_DENOMINATOR = 10_000


class CurrencyMismatch(ValueError):
    """Raised when money of two currencies is combined."""


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_known_currency(code: object) -> bool:
    return isinstance(code, str) and len(code) == 3 and code.isupper() and code in known_currencies()


@cache
def currency_digits(code: str) -> int:
    """Decimal places of the currency's minor unit per ISO 4217 (JPY 0, USD 2, BHD 3)."""
    if not is_known_currency(code):
        raise ValueError(f"unknown currency {code!r}")
    return int(get_currency_precision(code))


def major_unit(code: str) -> int:
    """How many minor units make one major unit (100 for USD, 1 for JPY, 1000 for BHD)."""
    return int(10 ** currency_digits(code))


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"money amounts are integers of minor units, got {self.amount!r}")
        if not -MAX_AMOUNT <= self.amount <= MAX_AMOUNT:
            raise ValueError("amount does not fit in 64 bits")
        if not is_known_currency(self.currency):
            raise ValueError(f"unknown currency {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse a major-unit decimal string ("12.50") into minor units, refusing excess precision."""
        if not isinstance(text, str) or not _DECIMAL_TEXT.fullmatch(text.strip()):
            raise ValueError(f"{text!r} is not an amount")
        try:
            value = Decimal(text.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{text!r} is not an amount") from exc
        if not value.is_finite():
            raise ValueError(f"{text!r} is not an amount")
        scaled = value * major_unit(currency)
        if scaled != scaled.to_integral_value(rounding=ROUND_DOWN):
            raise ValueError(
                f"{currency} has {currency_digits(currency)} decimal places; {text!r} has more"
            )
        return cls(int(scaled), currency)

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._check(other)
        return self.amount >= other.amount

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-currency_digits(self.currency))

    def format(self, locale: str = "en_US") -> str:
        return format_money(self.amount, self.currency, locale)

    def __str__(self) -> str:
        digits = currency_digits(self.currency)
        return f"{self.to_decimal():.{digits}f} {self.currency}"


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    value = Decimal(amount).scaleb(-currency_digits(currency))
    return str(format_currency(value, currency, locale=locale))


def to_decimal_string(amount: int, currency: str) -> str:
    """Plain decimal text with exactly the currency's digits ("1234.50"), as journals want it."""
    digits = currency_digits(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def bps_floor(amount: int, bps: int) -> int:
    """floor(amount * bps / 10000), exact for any 64-bit amount."""
    return (amount * bps) // BPS_DENOMINATOR


def bps_ceil(amount: int, bps: int) -> int:
    """ceil(amount * bps / 10000), exact for any 64-bit amount."""
    return -((-amount * bps) // BPS_DENOMINATOR)


def seller_fee(amount: int, bps: int) -> int:
    return bps_floor(amount, bps)


def buyer_fee(amount: int, bps: int) -> int:
    return bps_ceil(amount, bps)


def buyer_fee_refund(*, funded: int, kept_before: int, kept_after: int, bps: int) -> int:
    """Buyer fee returned when what stays with the seller drops from kept_before to kept_after.

    The fee held is always ``ceil(kept * bps / 10000)``, so a sequence of refunds returns exactly
    ``buyer_fee(funded) - buyer_fee(kept_final)`` in total, whatever the order of the refunds.
    """
    if not 0 <= kept_after <= kept_before <= funded:
        raise ValueError("kept amounts must shrink within the funded amount")
    return buyer_fee(kept_before, bps) - buyer_fee(kept_after, bps)


def split_evenly(total: int, parts: int) -> list[int]:
    """Split total into `parts` amounts differing by at most one minor unit, summing to total."""
    if parts < 1:
        raise ValueError("need at least one part")
    if total < 0:
        raise ValueError("cannot split a negative total")
    base, remainder = divmod(total, parts)
    return [base + (1 if i < remainder else 0) for i in range(parts)]
