"""The postings each money movement makes (SPEC §2.4–2.5). Pure: no I/O.

Sign convention: a posting's amount is added to its account's balance. Accounts that hold money
(escrow, clearing, available, platform fees) carry positive balances; the outside world accounts are
their counterparts — `world:payments` goes negative as money comes in, `world:refunds` and
`world:payouts` go positive as money leaves. Every transfer sums to zero, so all balances sum to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from milepost.money import buyer_fee_refund, seller_fee

WORLD_PAYMENTS = "world:payments"
WORLD_REFUNDS = "world:refunds"
WORLD_PAYOUTS = "world:payouts"
PLATFORM_FEES = "platform:fees"


def escrow_account(order_id: str) -> str:
    return f"escrow:order:{order_id}"


def clearing_account(seller_id: str) -> str:
    return f"seller:{seller_id}:clearing"


def available_account(seller_id: str) -> str:
    return f"seller:{seller_id}:available"


def must_not_go_negative(account: str) -> bool:
    """Escrow, clearing and available balances can never be negative (invariant 2)."""
    return account.startswith("escrow:") or account.endswith((":clearing", ":available"))


class TransferKind(StrEnum):
    FUND = "fund"
    RELEASE = "release"
    REFUND = "refund"
    CLEAR = "clear"
    PAYOUT = "payout"


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    amount: int


@dataclass(frozen=True, slots=True)
class TransferSpec:
    kind: TransferKind
    currency: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise ValueError("a transfer needs at least two postings")
        if sum(p.amount for p in self.postings) != 0:
            raise ValueError("a transfer's postings must sum to zero")

    def amount_for(self, account: str) -> int:
        return sum(p.amount for p in self.postings if p.account == account)


def _transfer(kind: TransferKind, currency: str, *postings: Posting) -> TransferSpec:
    # Zero postings carry no information; dropping them keeps journals clean.
    kept = tuple(p for p in postings if p.amount != 0)
    return TransferSpec(kind, currency, kept)


def fund(*, order_id: str, currency: str, amount: int, buyer_fee_amount: int) -> TransferSpec:
    """The buyer pays a milestone into escrow; the buyer fee goes to the platform at once."""
    return _transfer(
        TransferKind.FUND,
        currency,
        Posting(WORLD_PAYMENTS, -(amount + buyer_fee_amount)),
        Posting(escrow_account(order_id), amount),
        Posting(PLATFORM_FEES, buyer_fee_amount),
    )


@dataclass(frozen=True, slots=True)
class Release:
    transfer: TransferSpec
    gross: int
    fee: int
    net: int


def release(
    *, order_id: str, seller_id: str, currency: str, amount: int, seller_fee_bps: int
) -> Release:
    """Escrow pays the seller (into clearing) minus the platform's fee."""
    fee = seller_fee(amount, seller_fee_bps)
    net = amount - fee
    spec = _transfer(
        TransferKind.RELEASE,
        currency,
        Posting(escrow_account(order_id), -amount),
        Posting(clearing_account(seller_id), net),
        Posting(PLATFORM_FEES, fee),
    )
    return Release(spec, amount, fee, net)


@dataclass(frozen=True, slots=True)
class Refund:
    transfer: TransferSpec
    amount: int
    buyer_fee_refund: int


def refund(
    *,
    order_id: str,
    currency: str,
    amount: int,
    funded: int,
    kept_before: int,
    buyer_fee_bps: int,
) -> Refund:
    """Escrow returns `amount` to the buyer, with the buyer fee on it (cumulative ceil rule)."""
    fee_back = buyer_fee_refund(
        funded=funded, kept_before=kept_before, kept_after=kept_before - amount, bps=buyer_fee_bps
    )
    spec = _transfer(
        TransferKind.REFUND,
        currency,
        Posting(escrow_account(order_id), -amount),
        Posting(PLATFORM_FEES, -fee_back),
        Posting(WORLD_REFUNDS, amount + fee_back),
    )
    return Refund(spec, amount, fee_back)


def clear(*, seller_id: str, currency: str, amount: int) -> TransferSpec:
    """A clearing lot becomes available to the seller."""
    return _transfer(
        TransferKind.CLEAR,
        currency,
        Posting(clearing_account(seller_id), -amount),
        Posting(available_account(seller_id), amount),
    )


def payout(*, seller_id: str, currency: str, amount: int) -> TransferSpec:
    """The seller withdraws available money to the outside world."""
    return _transfer(
        TransferKind.PAYOUT,
        currency,
        Posting(available_account(seller_id), -amount),
        Posting(WORLD_PAYOUTS, amount),
    )
