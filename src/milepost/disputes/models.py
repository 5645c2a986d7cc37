"""Disputes of one milestone, and every proposal made in them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from milepost.db import Base, UTCDateTime
from milepost.disputes.states import DisputeAction, DisputeStatus, next_dispute_status


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    opened_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    milestone_status_before: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_seller_amount: Mapped[int | None] = mapped_column(BigInteger)
    # agreement | silence | operator
    resolved_how: Mapped[str | None] = mapped_column(String(20))
    resolved_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    proposals_count: Mapped[int] = mapped_column(Integer, default=0)

    def transition(self, action: DisputeAction) -> DisputeStatus:
        new = next_dispute_status(DisputeStatus(self.status), action)
        self.status = new
        return new


class DisputeProposal(Base):
    __tablename__ = "dispute_proposals"
    __table_args__ = (UniqueConstraint("dispute_id", "seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dispute_id: Mapped[str] = mapped_column(ForeignKey("disputes.id"))
    seq: Mapped[int] = mapped_column(Integer)
    proposed_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(20))
    seller_amount: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
