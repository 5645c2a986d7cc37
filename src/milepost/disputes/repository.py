from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from milepost.disputes.models import Dispute, DisputeProposal


def get_dispute(session: Session, dispute_id: str) -> Dispute | None:
    if not isinstance(dispute_id, str) or len(dispute_id) > 40:
        return None
    return session.scalars(
        select(Dispute).where(Dispute.id == dispute_id).execution_options(populate_existing=True)
    ).first()


def proposals_of(session: Session, dispute_id: str) -> list[DisputeProposal]:
    return list(
        session.scalars(
            select(DisputeProposal).where(DisputeProposal.dispute_id == dispute_id).order_by(DisputeProposal.seq)
        )
    )


def disputes_of_order(session: Session, order_id: str) -> Sequence[Dispute]:
    return session.scalars(select(Dispute).where(Dispute.order_id == order_id).order_by(Dispute.opened_at)).all()


def open_disputes(session: Session, *, limit: int = 200) -> Sequence[Dispute]:
    return session.scalars(
        select(Dispute).where(Dispute.status != "resolved").order_by(Dispute.opened_at).limit(limit)
    ).all()
