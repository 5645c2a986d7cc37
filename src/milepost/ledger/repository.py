"""Ledger queries: balances are always sums of postings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from milepost.ledger.models import ClearingLot, Posting, Transfer


def balance(session: Session, account: str, currency: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.account == account, Posting.currency == currency
        )
    )
    return int(total or 0)


def balances(session: Session, accounts: Iterable[str]) -> dict[tuple[str, str], int]:
    """{(account, currency): balance} for the given accounts."""
    rows = session.execute(
        select(Posting.account, Posting.currency, func.sum(Posting.amount))
        .where(Posting.account.in_(list(accounts)))
        .group_by(Posting.account, Posting.currency)
    ).all()
    return {(account, currency): int(total) for account, currency, total in rows}


def transfer_exists(session: Session, idempotency_key: str) -> bool:
    return session.scalar(select(Transfer.id).where(Transfer.idempotency_key == idempotency_key)) is not None


def get_lot(session: Session, lot_id: str) -> ClearingLot | None:
    return session.get(ClearingLot, lot_id)


def open_lots(session: Session, seller_id: str) -> Sequence[ClearingLot]:
    return session.scalars(
        select(ClearingLot)
        .where(ClearingLot.seller_id == seller_id, ClearingLot.cleared_at.is_(None))
        .order_by(ClearingLot.available_at)
    ).all()


def entries_for_accounts(
    session: Session, accounts: Sequence[str], *, after_id: int = 0, limit: int = 100
) -> Sequence[tuple[Posting, Transfer]]:
    rows = session.execute(
        select(Posting, Transfer)
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(Posting.account.in_(accounts), Posting.id > after_id)
        .order_by(Posting.id)
        .limit(limit)
    ).all()
    return [(p, t) for p, t in rows]
