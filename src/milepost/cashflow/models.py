"""Read models of cash flow: the forecast schedule (one row per forecast line of every agreed or
active order) and the escrow held per order.

Both are derived entirely from orders, milestones and open disputes (`cashflow.projection`) and kept
current in the transaction that changes those (`cashflow.projector`); the audit recomputes them.
Each holds what its report needs and nothing else, keyed by the party that reads it, so a seller's
forecast and balances read their own rows alone — no join, no window over the chain of milestones,
no grouping of milestones into orders (bench/README.md). No foreign keys: rows are rewritten after
the rows they derive from, and are never a source of truth.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from milepost.db import Base


def _bytewise(length: int) -> String:
    """Text ordered byte by byte (as Python orders str) on both databases: PostgreSQL's "C"
    collation, SQLite's default. The schedule's order is an index's order (below)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class ScheduleRow(Base):
    """A forecast line (or a disputed milestone: rank EXCLUDED, base_us = lag_us = NEVER).

    A line's date is max(base_us, now + lag_us): `base_us` until `slides_from_us` (= base_us −
    lag_us), `now + lag_us` after it. A seller's page of lines in schedule order is therefore two
    index ranges: lines still at their base, read in order from `ix_forecast_schedule_dated` (whose
    columns are the schedule key), and lines already sliding with now (few: late or overdue work),
    found by `ix_forecast_schedule_sliding` — a page costs its own size, not the seller's.
    """

    __tablename__ = "forecast_schedule"
    __table_args__ = (
        Index("ix_forecast_schedule_dated", "seller_id", "base_us", "rank", "currency", "order_id", "seq",
              "milestone_id"),
        Index("ix_forecast_schedule_sliding", "seller_id", "slides_from_us"),
    )

    milestone_id: Mapped[str] = mapped_column(_bytewise(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(_bytewise(40), index=True)
    seller_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(_bytewise(3))
    seq: Mapped[int] = mapped_column(Integer)
    # certainty rank (forecast.CERTAINTY_ORDER), or projection.EXCLUDED for a disputed milestone
    rank: Mapped[int] = mapped_column(SmallInteger)
    gross: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    # expected at max(base_us, now + lag_us), µs since 1970 UTC (projection.NEVER: no such term)
    base_us: Mapped[int] = mapped_column(BigInteger)
    lag_us: Mapped[int] = mapped_column(BigInteger)
    slides_from_us: Mapped[int] = mapped_column(BigInteger)
    late_after_us: Mapped[int | None] = mapped_column(BigInteger)
    funded: Mapped[bool] = mapped_column(Boolean)


class OrderEscrow(Base):
    """The money in escrow for each order that holds some: the sum of its milestones' cached
    funded − released − refunded (which ledger invariant 3 ties to the escrow account's postings).
    No row for an order holding nothing."""

    __tablename__ = "order_escrow"
    __table_args__ = (
        # a party's orders in id order: a page of the balances is one index range
        Index("ix_order_escrow_seller_id_order_id", "seller_id", "order_id"),
        Index("ix_order_escrow_buyer_id_order_id", "buyer_id", "order_id"),
    )

    order_id: Mapped[str] = mapped_column(_bytewise(40), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(40))
    buyer_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
