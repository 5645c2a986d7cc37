"""Balances of one user, per currency, as a seller and as a buyer (SPEC §3).

Seller side (sums of the ledger, so the journal exports reproduce them to the minor unit):
* `in_escrow` — funded into the escrow of orders where the user sells, not yet released or refunded
  (includes money approved but held until completion under release mode `on_completion`);
  `in_escrow_by_order` breaks it down;
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

from milepost.cashflow import repository as repo
from milepost.ledger import postings


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
    in_escrow_by_order: list[OrderEscrow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def balances_for(session: Session, user_id: str) -> list[CurrencyBalances]:
    """Every currency the user has money in (as seller or buyer), sorted by currency code.

    Five grouped queries whatever the number of orders or milestones.
    """
    result: dict[str, CurrencyBalances] = {}

    def of(currency: str) -> CurrencyBalances:
        if currency not in result:
            result[currency] = CurrencyBalances(currency)
        return result[currency]

    for order_id, title, currency, amount in repo.escrow_tuples(session, seller_id=user_id):
        b = result.get(currency) or of(currency)
        b.in_escrow += amount
        b.in_escrow_by_order.append(OrderEscrow(order_id, title, amount))
    for (account, currency), amount in repo.seller_account_balances(session, user_id).items():
        if account == postings.clearing_account(user_id):
            of(currency).clearing = amount
        else:
            of(currency).available = amount
    for currency, amount in repo.seller_paid_out(session, user_id).items():
        of(currency).paid_out = amount
    for currency, flows in repo.buyer_flows(session, user_id).items():
        b = of(currency)
        b.committed = flows.get("escrow", 0)
        b.refunded = flows.get("refunded", 0)
        b.spent = flows.get("paid", 0) - b.committed - b.refunded
    return [result[c] for c in sorted(result)]


def balances_payload(session: Session, user_id: str) -> dict[str, Any]:
    """The `GET /v1/balances` body."""
    return {"balances": [b.as_dict() for b in balances_for(session, user_id)]}
