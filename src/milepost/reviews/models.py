"""One review per party per ended order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from milepost.db import Base, UTCDateTime


class Review(Base):
    __tablename__ = "reviews"
    # The database refuses a second review by the same party, whatever races past the service check.
    __table_args__ = (UniqueConstraint("order_id", "author_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    author_role: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    order_status: Mapped[str] = mapped_column(String(20))  # completed | cancelled, when reviewed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
