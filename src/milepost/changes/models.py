"""Change orders and extension requests, kept with their answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from milepost.changes.states import (
    ChangeAction,
    ChangeStatus,
    ExtensionAction,
    ExtensionStatus,
    next_change_status,
    next_extension_status,
)
from milepost.db import Base, UTCDateTime


class ChangeOrder(Base):
    """A proposed change of an agreed plan: operations on milestones, with a reason."""

    __tablename__ = "change_orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    proposed_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    proposed_by_role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    # The plan version the change was written against; accepting it needs that version still current.
    base_plan_version: Mapped[int] = mapped_column(Integer)
    # {"add": [spec…], "remove": [milestone_id…], "update": [{"milestone_id", field: value…}]}
    operations: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Escrow needed after the change minus before, for the funded milestones (+ top-up, − refund).
    escrow_delta_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    total_before_amount: Mapped[int] = mapped_column(BigInteger)
    total_after_amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    resulting_plan_version: Mapped[int | None] = mapped_column(Integer)

    def transition(self, action: ChangeAction) -> ChangeStatus:
        new = next_change_status(ChangeStatus(self.status), action)
        self.status = new
        return new


class Extension(Base):
    """The seller asks for more days on the running milestone; the buyer answers or stays silent."""

    __tablename__ = "extensions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    requested_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    # Silence until this time accepts the request (the order's extension_silence_hours).
    respond_by_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # buyer | silence | system
    decided_how: Mapped[str | None] = mapped_column(String(20))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    due_at_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at_after: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def transition(self, action: ExtensionAction) -> ExtensionStatus:
        new = next_extension_status(ExtensionStatus(self.status), action)
        self.status = new
        return new
