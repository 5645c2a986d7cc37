"""`milepost audit`: re-derive every balance from the postings and check the invariants of SPEC §2.5.

Each check returns the violations it found, named so a person can go and look.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from milepost.ledger.models import ClearingLot, Posting, Transfer
from milepost.ledger.postings import must_not_go_negative
from milepost.orders.models import Milestone, Order
from milepost.orders.states import MilestoneStatus, OrderStatus
from milepost.orders.terms import ReleaseMode
from milepost.payouts.models import Payout

MAX_LISTED = 50


@dataclass
class Check:
    name: str
    description: str
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "description": self.description,
                "violations": self.violations[:MAX_LISTED], "violation_count": len(self.violations)}


@dataclass
class AuditReport:
    checks: list[Check]
    transfers: int
    postings: int

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "transfers": self.transfers, "postings": self.postings,
                "checks": [c.as_dict() for c in self.checks]}


def run_audit(session: Session) -> AuditReport:
    checks = [
        _transfers_balance(session),
        _no_negative_balances(session),
        _milestone_money(session),
        _ended_orders_hold_no_escrow(session),
        _cached_balances(session),
        _state_matches_money(session),
        _forecast_schedule(session),
        _order_escrow(session),
    ]
    transfers = session.scalar(select(func.count()).select_from(Transfer)) or 0
    count = session.scalar(select(func.count()).select_from(Posting)) or 0
    return AuditReport(checks, int(transfers), int(count))


def _transfers_balance(session: Session) -> Check:
    check = Check("transfers_balance", "every transfer sums to zero per currency, has at least two "
                  "postings in its own currency; all balances sum to zero")
    rows = session.execute(
        select(Posting.transfer_id, Posting.currency, func.sum(Posting.amount), func.count())
        .group_by(Posting.transfer_id, Posting.currency)
        .having(func.sum(Posting.amount) != 0)
    ).all()
    check.violations += [f"transfer {t} sums to {s} {c}" for t, c, s, _ in rows]
    rows = session.execute(
        select(Transfer.id, func.count(Posting.id))
        .outerjoin(Posting, Posting.transfer_id == Transfer.id)
        .group_by(Transfer.id)
        .having(func.count(Posting.id) < 2)
    ).all()
    check.violations += [f"transfer {t} has {n} posting(s)" for t, n in rows]
    rows = session.execute(
        select(Transfer.id, Transfer.currency, Posting.currency)
        .join(Posting, Posting.transfer_id == Transfer.id)
        .where(Posting.currency != Transfer.currency)
    ).all()
    check.violations += [f"transfer {t} ({tc}) has a {pc} posting" for t, tc, pc in rows]
    rows = session.execute(
        select(Posting.currency, func.sum(Posting.amount)).group_by(Posting.currency)
        .having(func.sum(Posting.amount) != 0)
    ).all()
    check.violations += [f"all {c} balances sum to {s}, not zero" for c, s in rows]
    return check


def _no_negative_balances(session: Session) -> Check:
    check = Check("no_negative_balances", "escrow, clearing and available balances are never negative")
    rows = session.execute(
        select(Posting.account, Posting.currency, func.sum(Posting.amount))
        .group_by(Posting.account, Posting.currency)
        .having(func.sum(Posting.amount) < 0)
    ).all()
    check.violations += [f"{a} is {s} {c}" for a, c, s in rows if must_not_go_negative(a)]
    return check


def _milestone_sums(session: Session) -> dict[str, tuple[int, int, int, int]]:
    """{milestone_id: (funded, released, refunded, buyer_fee_net)} derived from postings alone."""
    escrow = Posting.account.like("escrow:%")
    fees = Posting.account == "platform:fees"
    rows = session.execute(
        select(
            Transfer.milestone_id,
            func.sum(case((and_(escrow, Transfer.kind == "fund"), Posting.amount), else_=0)),
            func.sum(case((and_(escrow, Transfer.kind == "release"), -Posting.amount), else_=0)),
            func.sum(case((and_(escrow, Transfer.kind == "refund"), -Posting.amount), else_=0)),
            func.sum(case((and_(fees, Transfer.kind.in_(["fund", "refund"])), Posting.amount), else_=0)),
        )
        .join(Posting, Posting.transfer_id == Transfer.id)
        .where(Transfer.milestone_id.is_not(None))
        .group_by(Transfer.milestone_id)
    ).all()
    return {mid: (int(f), int(r), int(x), int(b)) for mid, f, r, x, b in rows}


def _milestone_money(session: Session) -> Check:
    check = Check("milestone_money", "per milestone: funded = released + refunded + still in escrow, "
                  "and each order's escrow balance is the sum of its milestones'")
    sums = _milestone_sums(session)
    for m in session.scalars(select(Milestone)):
        funded, released, refunded, _ = sums.get(m.id, (0, 0, 0, 0))
        in_escrow = funded - released - refunded
        if in_escrow < 0:
            check.violations.append(f"milestone {m.id}: released+refunded exceed funded by {-in_escrow}")
        if funded not in (0, m.amount):
            check.violations.append(f"milestone {m.id}: funded {funded} but amount is {m.amount}")
    escrow_by_order = dict(
        session.execute(
            select(Posting.account, func.sum(Posting.amount)).where(Posting.account.like("escrow:order:%"))
            .group_by(Posting.account)
        ).all()
    )
    derived: dict[str, int] = {}
    for mid, order_id in session.execute(select(Milestone.id, Milestone.order_id)):
        f, r, x, _ = sums.get(mid, (0, 0, 0, 0))
        derived[order_id] = derived.get(order_id, 0) + f - r - x
    for account, balance in escrow_by_order.items():
        order_id = account.removeprefix("escrow:order:")
        if derived.get(order_id, 0) != balance:
            check.violations.append(f"{account} holds {balance}, its milestones {derived.get(order_id, 0)}")
    return check


def _ended_orders_hold_no_escrow(session: Session) -> Check:
    check = Check("ended_orders_empty", "a completed or cancelled order holds zero escrow")
    rows = session.execute(
        select(Order.id, Order.status, func.sum(Posting.amount))
        .join(Posting, Posting.account == literal("escrow:order:") + Order.id)
        .where(Order.status.in_([OrderStatus.COMPLETED, OrderStatus.CANCELLED]))
        .group_by(Order.id, Order.status)
        .having(func.sum(Posting.amount) != 0)
    ).all()
    check.violations += [f"order {o} is {s} but holds {b} in escrow" for o, s, b in rows]
    return check


def _cached_balances(session: Session) -> Check:
    check = Check("cached_balances", "cached figures (milestone money, open lots, payouts) equal the "
                  "sums of postings")
    sums = _milestone_sums(session)
    for m in session.scalars(select(Milestone)):
        funded, released, refunded, fee = sums.get(m.id, (0, 0, 0, 0))
        cached = (m.funded_amount, m.released_amount, m.refunded_amount, m.buyer_fee_amount)
        if cached != (funded, released, refunded, fee):
            check.violations.append(
                f"milestone {m.id}: cached funded/released/refunded/buyer fee {cached} != "
                f"postings {(funded, released, refunded, fee)}"
            )
    open_lots = {
        f"seller:{seller}:clearing:{cur}": int(total)
        for seller, cur, total in session.execute(
            select(ClearingLot.seller_id, ClearingLot.currency, func.sum(ClearingLot.amount))
            .where(ClearingLot.cleared_at.is_(None))
            .group_by(ClearingLot.seller_id, ClearingLot.currency)
        )
    }
    clearing = {
        f"{a}:{c}": int(s)
        for a, c, s in session.execute(
            select(Posting.account, Posting.currency, func.sum(Posting.amount))
            .where(Posting.account.like("seller:%:clearing")).group_by(Posting.account, Posting.currency)
        )
    }
    for key in set(open_lots) | set(clearing):
        if int(open_lots.get(key, 0)) != clearing.get(key, 0):
            check.violations.append(f"{key}: open lots {open_lots.get(key, 0)} != balance {clearing.get(key, 0)}")
    payouts = dict(
        session.execute(select(Payout.currency, func.sum(Payout.amount)).group_by(Payout.currency)).all()
    )
    world = dict(
        session.execute(
            select(Posting.currency, func.sum(Posting.amount)).where(Posting.account == "world:payouts")
            .group_by(Posting.currency)
        ).all()
    )
    for cur in set(payouts) | set(world):
        if int(payouts.get(cur, 0)) != int(world.get(cur, 0)):
            check.violations.append(f"payouts {cur}: rows {payouts.get(cur, 0)} != postings {world.get(cur, 0)}")
    return check


def _state_matches_money(session: Session) -> Check:
    check = Check("state_matches_money", "no state change without its transfer and no transfer "
                  "without its state change")
    sums = _milestone_sums(session)
    orders = {o.id: o for o in session.scalars(select(Order))}
    for m in session.scalars(select(Milestone)):
        order = orders[m.order_id]
        funded, released, refunded, _ = sums.get(m.id, (0, 0, 0, 0))
        in_escrow = funded - released - refunded
        status = MilestoneStatus(m.status)
        where = f"milestone {m.id} ({status})"
        if status in (MilestoneStatus.IN_PROGRESS, MilestoneStatus.DELIVERED, MilestoneStatus.DISPUTED):
            if in_escrow != m.amount:
                check.violations.append(f"{where}: running but holds {in_escrow} of {m.amount} in escrow")
        elif status == MilestoneStatus.PENDING:
            if released or refunded or (funded and m.funded_at is None):
                check.violations.append(f"{where}: pending but money has moved")
        else:  # approved, cancelled, resolved: settled
            owed = m.held_for_seller_amount
            ended = order.status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED)
            if in_escrow != owed:
                check.violations.append(f"{where}: settled but {in_escrow} in escrow, {owed} owed to seller")
            if owed and (order.release != ReleaseMode.ON_COMPLETION or ended):
                check.violations.append(f"{where}: {owed} owed to the seller was never released")
            if status == MilestoneStatus.APPROVED and released + owed != funded:
                check.violations.append(f"{where}: approved but only {released + owed} of {funded} paid")
        if funded and m.funded_at is None:
            check.violations.append(f"{where}: funded in the ledger but not marked funded")
    lot_transfers = {
        lot_id for (lot_id,) in session.execute(select(Transfer.lot_id).where(Transfer.kind == "clear"))
    }
    for lot in session.scalars(select(ClearingLot)):
        cleared_by_transfer = lot.id in lot_transfers
        if lot.amount and (lot.cleared_at is not None) != cleared_by_transfer:
            check.violations.append(f"lot {lot.id}: cleared_at and clear transfer disagree")
    return check


def _forecast_schedule(session: Session) -> Check:
    from milepost.cashflow.projector import stale_schedule

    check = Check("forecast_schedule", "the forecast schedule holds exactly the lines recomputed from "
                  "every agreed or active order's terms, milestones and open disputes")
    check.violations += stale_schedule(session)
    return check


def _order_escrow(session: Session) -> Check:
    from milepost.cashflow.projector import stale_escrow

    check = Check("order_escrow", "each order's escrow row holds the sum of its milestones' escrow "
                  "(and no row for an order holding nothing)")
    check.violations += stale_escrow(session)
    return check
