"""Balances of one user, per currency, as a seller and as a buyer (SPEC §3).

Seller side (sums of the ledger, so the journal exports reproduce them to the minor unit):
* `in_escrow` — funded into the escrow of orders where the user sells, not yet released or refunded
  (includes money approved but held until completion under release mode `on_completion`);
  `order_count` orders hold it, and `in_escrow_by_order` breaks it down one page at a time: the
  orders are listed by order id (over every currency), `DEFAULT_ORDERS` a page, and `next_cursor`
  points at the next page — a seller with thousands of open orders gets their totals without
  thousands of rows;
* `clearing` — released to the seller, waiting for its clearance date;
* `available` — cleared, can be paid out;
* `paid_out` — withdrawn so far.

Buyer mirror, over the orders where the user buys:
* `committed` — paid into escrow and still there;
* `refunded` — returned to the buyer (with the buyer fee on it);
* `spent` — gone for good: released to sellers plus the buyer fees kept.
  Always ``paid in = committed + refunded + spent``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from milepost.cashflow import cursor
from milepost.cashflow import repository as repo
from milepost.errors import InvalidInput

DEFAULT_ORDERS = 100  # orders per page of `in_escrow_by_order` (`GET /v1/balances`)
MAX_ORDERS = 1000


@dataclass(frozen=True, slots=True)
class OrderEscrow:
    order_id: str
    title: str
    amount: int


@dataclass(slots=True)
class CurrencyBalances:
    """One currency's balances of a user; every amount in minor units."""

    currency: str
    in_escrow: int = 0
    clearing: int = 0
    available: int = 0
    paid_out: int = 0
    committed: int = 0
    refunded: int = 0
    spent: int = 0
    order_count: int = 0  # the seller's orders holding `in_escrow` (every page)
    in_escrow_by_order: list[OrderEscrow] = field(default_factory=list)  # this page's

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BalancesPage:
    """Every currency's totals, with one page of the orders holding money in escrow."""

    balances: list[CurrencyBalances]
    next_cursor: str | None = None  # pass as `after` for the next orders

    def as_dict(self) -> dict[str, Any]:
        return {"balances": [b.as_dict() for b in self.balances], "next_cursor": self.next_cursor}


def orders_limit(limit: int | None) -> int:
    """Orders per page: `DEFAULT_ORDERS` unless asked, 0 (totals only) to `MAX_ORDERS`."""
    if limit is None:
        return DEFAULT_ORDERS
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_ORDERS:
        raise InvalidInput("invalid limit", errors=[{"field": "limit", "message": f"between 0 (totals only) and {MAX_ORDERS}"}])
    return limit


def encode_cursor(order_id: str) -> str:
    """An opaque cursor: the id of the last order of a page."""
    return cursor.encode([order_id])


def decode_cursor(text: str) -> str:
    """The order id in a cursor from `encode_cursor`; anything else is an input error (422)."""
    raw = cursor.decode(text, max_len=200)
    if len(raw) != 1 or not isinstance(raw[0], str) or not 0 < len(raw[0]) <= 40 \
            or not raw[0].isascii() or not raw[0].isprintable():
        raise cursor.invalid()
    return raw[0]


def balances_page(
    session: Session, user_id: str, *, limit: int | None = None, after: str | None = None, all_orders: bool = False
) -> BalancesPage:
    """Every currency the user has money in (as seller or buyer), sorted by currency code, with the
    first `limit` (default `DEFAULT_ORDERS`; 0: none) of the seller's orders holding money in
    escrow after the `after` cursor, by order id — or all of them with `all_orders`.

    Two queries whatever the number of orders or milestones; sums are computed by the database.
    """
    size = None if all_orders else orders_limit(limit)
    start = decode_cursor(after) if after is not None else None
    result: dict[str, CurrencyBalances] = {}

    def of(currency: str) -> CurrencyBalances:
        if currency not in result:
            result[currency] = CurrencyBalances(currency)
        return result[currency]

    escrow = repo.escrow_summary(session, seller_id=user_id, limit=size, after=start)
    for currency, (amount, orders) in escrow.totals.items():
        b = of(currency)
        b.in_escrow, b.order_count = amount, orders
    page = escrow.page
    next_cursor = None
    if size is not None and len(page) > size:
        page = page[:size]
        next_cursor = encode_cursor(page[-1].order_id)
    for row in page:
        of(row.currency).in_escrow_by_order.append(OrderEscrow(row.order_id, row.title, row.amount))
    for currency, sums in repo.ledger_sums(session, user_id).items():
        b = of(currency)
        b.clearing, b.available, b.paid_out = sums.get("clearing", 0), sums.get("available", 0), sums["paid_out"]
        b.committed, b.refunded = sums.get("escrow", 0), sums.get("refunded", 0)
        b.spent = sums["paid"] - b.committed - b.refunded
    return BalancesPage([result[c] for c in sorted(result)], next_cursor)


def balances_for(
    session: Session, user_id: str, *, limit: int | None = None, after: str | None = None, all_orders: bool = False
) -> list[CurrencyBalances]:
    """`balances_page(…).balances`: the totals, with one page (by default) of orders in escrow."""
    return balances_page(session, user_id, limit=limit, after=after, all_orders=all_orders).balances


def balances_payload(
    session: Session, user_id: str, *, limit: int | None = None, after: str | None = None
) -> dict[str, Any]:
    """The `GET /v1/balances` body."""
    return balances_page(session, user_id, limit=limit, after=after).as_dict()
