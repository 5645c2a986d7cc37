"""Seller statements: what each payout paid for, and a period's movements (SPEC §3).

**Payout statements — the FIFO rule.** Cleared money is fungible once it is available, so which
milestone a payout "paid" is a convention. Milepost uses first in, first out: every payout of a
currency, in the order they were made, consumes the seller's cleared lots in the order they became
available (`cleared_at`, then lot id). A lot can be split across payouts; then its fee is allocated
cumulatively — after `c` of a lot's net `n` is paid out, ``floor(fee × c / n)`` of its fee is
counted — so the parts of a lot's fee always sum exactly to the fee (and gross = net + fee per part).

**Period statements.** Per currency, the seller's *position* — money in the escrow of their orders,
clearing, available — at the opening and at the close of [start, end), and the movements between:
``closing = opening + funded − fees − refunds − payouts``. Releases (gross, its fee and the net into
clearing) and clears move money inside the position and are shown for the detail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from milepost.cashflow import repository as repo
from milepost.cashflow.exports import Period
from milepost.clock import as_utc
from milepost.errors import NotFound


@dataclass(frozen=True, slots=True)
class PayoutPart:
    """The part of one clearing lot (one milestone's release) that a payout paid out."""

    lot_id: str
    order_id: str
    order_title: str
    milestone_id: str
    seq: int
    milestone_title: str
    released_at: datetime
    cleared_at: datetime
    lot_gross_amount: int
    lot_fee_amount: int
    lot_net_amount: int
    net_amount: int  # paid out of this lot by this payout
    fee_amount: int  # the lot's fee allocated to this part
    gross_amount: int  # net_amount + fee_amount

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["released_at"] = self.released_at.isoformat()
        data["cleared_at"] = self.cleared_at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class PayoutStatement:
    payout_id: str
    currency: str
    amount: int
    created_at: datetime
    parts: list[PayoutPart]
    rule: str = "fifo"

    @property
    def gross_amount(self) -> int:
        return sum(p.gross_amount for p in self.parts)

    @property
    def fee_amount(self) -> int:
        return sum(p.fee_amount for p in self.parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "payout_id": self.payout_id, "currency": self.currency, "amount": self.amount,
            "created_at": self.created_at.isoformat(), "rule": self.rule,
            "gross_amount": self.gross_amount, "fee_amount": self.fee_amount,
            "parts": [p.as_dict() for p in self.parts],
        }


def payout_statement(session: Session, *, seller_id: str, payout_id: str) -> PayoutStatement:
    """Which milestones and fees a payout paid (FIFO, see the module docstring).

    Another seller's payout is NotFound, never Forbidden: existence does not leak.
    """
    payout = repo.get_payout(session, payout_id)
    if payout is None or payout.seller_id != seller_id:
        raise NotFound("payout not found", code="payout_not_found")
    lots = list(repo.cleared_lots(session, seller_id, payout.currency))
    consumed = [0] * len(lots)  # net paid out of each lot so far
    index = 0
    for p in repo.payouts_in(session, seller_id, payout.currency):
        remaining = p.amount
        parts: list[PayoutPart] = []
        while remaining > 0 and index < len(lots):
            lot = lots[index]
            net = int(lot[8])
            take = min(remaining, net - consumed[index])
            before, after = consumed[index], consumed[index] + take
            fee = int(lot[7])
            fee_part = fee * after // net - fee * before // net
            parts.append(
                PayoutPart(
                    lot_id=lot[0], order_id=lot[1], order_title=lot[2], milestone_id=lot[3], seq=lot[4],
                    milestone_title=lot[5], released_at=as_utc(lot[9]), cleared_at=as_utc(lot[10]),
                    lot_gross_amount=int(lot[6]), lot_fee_amount=fee, lot_net_amount=net,
                    net_amount=take, fee_amount=fee_part, gross_amount=take + fee_part,
                )
            )
            consumed[index] = after
            remaining -= take
            if consumed[index] == net:
                index += 1
        if p.id == payout.id:
            return PayoutStatement(p.id, p.currency, p.amount, as_utc(p.created_at), parts)
    raise NotFound("payout not found", code="payout_not_found")  # pragma: no cover


@dataclass(slots=True)
class Position:
    in_escrow: int = 0
    clearing: int = 0
    available: int = 0

    @property
    def total(self) -> int:
        return self.in_escrow + self.clearing + self.available

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


@dataclass(slots=True)
class PeriodStatement:
    currency: str
    start: datetime | None
    end: datetime | None
    opening: Position = field(default_factory=Position)
    funded: int = 0
    released: int = 0  # gross released from escrow to the seller
    fees: int = 0  # seller fees taken on those releases
    net_released: int = 0  # into clearing
    refunds: int = 0  # escrow returned to buyers
    cleared: int = 0  # clearing → available
    payouts: int = 0
    closing: Position = field(default_factory=Position)

    @property
    def ties_out(self) -> bool:
        return self.closing.total == self.opening.total + self.funded - self.fees - self.refunds - self.payouts

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "opening": self.opening.as_dict(),
            "funded": self.funded, "released": self.released, "fees": self.fees,
            "net_released": self.net_released, "refunds": self.refunds, "cleared": self.cleared,
            "payouts": self.payouts,
            "closing": self.closing.as_dict(),
        }


def _position(values: dict[str, int] | None) -> Position:
    values = values or {}
    return Position(values.get("escrow", 0), values.get("clearing", 0), values.get("available", 0))


def period_statement(session: Session, *, seller_id: str, period: Period) -> list[PeriodStatement]:
    """One statement per currency the seller had money or movements in. Three grouped queries."""
    opening = repo.seller_position(session, seller_id, before=period.start) if period.start else {}
    closing = repo.seller_position(session, seller_id, before=period.end)
    flows = repo.seller_flows(session, seller_id, start=period.start, end=period.end)
    result = []
    for currency in sorted(set(opening) | set(closing) | set(flows)):
        f = flows.get(currency, {})
        statement = PeriodStatement(
            currency=currency, start=period.start, end=period.end,
            opening=_position(opening.get(currency)), closing=_position(closing.get(currency)),
            funded=f.get(("fund", "escrow"), 0),
            released=-f.get(("release", "escrow"), 0),
            fees=f.get(("release", "fees"), 0),
            net_released=f.get(("release", "clearing"), 0),
            refunds=-f.get(("refund", "escrow"), 0),
            cleared=f.get(("clear", "available"), 0),
            payouts=-f.get(("payout", "available"), 0),
        )
        if statement.opening.total or statement.closing.total or any(f.values()):
            result.append(statement)
    return result
