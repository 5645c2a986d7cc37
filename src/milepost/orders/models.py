"""Orders, their plan versions, milestones and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from milepost.db import Base, UTCDateTime
from milepost.orders.states import (
    MilestoneAction,
    MilestoneStatus,
    OrderAction,
    OrderStatus,
    next_milestone_status,
    next_order_status,
)
from milepost.orders.terms import TERM_NAMES, Terms, terms_from_dict


class Order(Base):
    __tablename__ = "orders"
    # A seller's open orders in one index range (balances, forecast); its prefix serves every
    # lookup by seller (migration 0003).
    __table_args__ = (Index("ix_orders_seller_id_status", "seller_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    brief: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), index=True)
    plan_version: Mapped[int] = mapped_column(Integer, default=1)
    proposed_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    total_amount: Mapped[int] = mapped_column(BigInteger)
    # Terms, frozen when the order is agreed.
    funding: Mapped[str] = mapped_column(String(20))
    release: Mapped[str] = mapped_column(String(20))
    review_days: Mapped[int] = mapped_column(Integer)
    revisions: Mapped[int] = mapped_column(Integer)
    revision_turnaround_days: Mapped[int] = mapped_column(Integer)
    clearance_days: Mapped[int] = mapped_column(Integer)
    kill_fee_bps: Mapped[int] = mapped_column(Integer)
    seller_fee_bps: Mapped[int] = mapped_column(Integer)
    buyer_fee_bps: Mapped[int] = mapped_column(Integer)
    late_grace_hours: Mapped[int] = mapped_column(Integer)
    dispute_response_days: Mapped[int] = mapped_column(Integer)
    dispute_negotiation_days: Mapped[int] = mapped_column(Integer)
    extension_silence_hours: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    agreed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))

    @property
    def terms(self) -> Terms:
        return terms_from_dict({name: getattr(self, name) for name in TERM_NAMES})

    def set_terms(self, terms: Terms) -> None:
        for name, value in terms.as_dict().items():
            setattr(self, name, value)

    @property
    def order_status(self) -> OrderStatus:
        return OrderStatus(self.status)

    def transition(self, action: OrderAction) -> OrderStatus:
        new = next_order_status(OrderStatus(self.status), action)
        self.status = new
        return new


class PlanVersion(Base):
    """Every proposal and counter-proposal, kept: the negotiation history of an order."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("order_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    proposed_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("order_id", "seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    seq: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    acceptance_criteria: Mapped[list[str]] = mapped_column(JSON)
    amount: Mapped[int] = mapped_column(BigInteger)
    due_days: Mapped[int] = mapped_column(Integer)
    revisions_allowed: Mapped[int] = mapped_column(Integer)
    revisions_used: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), index=True)
    funded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Money of this milestone, cached from its transfers (the audit proves they agree).
    funded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    buyer_fee_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    released_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # Owed to the seller but held in escrow until the order ends (release mode `on_completion`).
    held_for_seller_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    deliveries_count: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def milestone_status(self) -> MilestoneStatus:
        return MilestoneStatus(self.status)

    @property
    def is_funded(self) -> bool:
        return self.funded_amount > 0

    @property
    def in_escrow_amount(self) -> int:
        return self.funded_amount - self.released_amount - self.refunded_amount

    def transition(self, action: MilestoneAction) -> MilestoneStatus:
        new = next_milestone_status(MilestoneStatus(self.status), action)
        self.status = new
        return new


class Delivery(Base):
    """One delivery attempt of a milestone; every attempt is kept."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("milestone_id", "attempt"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    delivered_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Filled when the buyer asks for a revision of this delivery.
    revision_reason: Mapped[str | None] = mapped_column(Text)


class DeliveryFile(Base):
    """A file of a delivery; the bytes live content-addressed (by SHA-256) under the data directory."""

    __tablename__ = "delivery_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Registers the listeners that keep the forecast schedule current: imported here, so no session can
# change an order or a milestone without them.
import milepost.cashflow.projector  # noqa: E402, F401
