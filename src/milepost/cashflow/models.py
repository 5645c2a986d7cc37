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


class ScheduleRow(Base):
    __tablename__ = "forecast_schedule"
    __table_args__ = (Index("ix_forecast_schedule_seller_id_rank", "seller_id", "rank"),)

    milestone_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    seller_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    seq: Mapped[int] = mapped_column(Integer)
    # certainty rank (forecast.CERTAINTY_ORDER), or projection.EXCLUDED for a disputed milestone
    rank: Mapped[int] = mapped_column(SmallInteger)
    gross: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    # expected at max(base_us, now + lag_us), µs since 1970 UTC (projection.NEVER: no such term)
    base_us: Mapped[int] = mapped_column(BigInteger)
    lag_us: Mapped[int] = mapped_column(BigInteger)
    late_after_us: Mapped[int | None] = mapped_column(BigInteger)
    funded: Mapped[bool] = mapped_column(Boolean)


class OrderEscrow(Base):
    """The money in escrow for each order that holds some: the sum of its milestones' cached
    funded − released − refunded (which ledger invariant 3 ties to the escrow account's postings).
    No row for an order holding nothing."""

    __tablename__ = "order_escrow"

    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(40), index=True)
    buyer_id: Mapped[str] = mapped_column(String(40), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
