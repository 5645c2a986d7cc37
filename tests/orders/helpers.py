"""Helpers shared by the service tests: people, one-line use cases, and what the database holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from milepost.accounts.models import User
from milepost.disputes.models import Dispute
from milepost.events.models import Event
from milepost.ledger.models import ClearingLot, Posting, Transfer
from milepost.ledger.postings import available_account, clearing_account, escrow_account
from milepost.orders import service as orders
from milepost.orders.models import Delivery, Milestone, Order, PlanVersion
from milepost.payouts.models import Payout
from milepost.runtime import Runtime
from milepost.timers.models import Timer
from tests.factories import get_order, make_user


@dataclass
class People:
    buyer: User
    seller: User
    operator: User
    stranger: User


def people(rt: Runtime) -> People:
    return People(
        buyer=make_user(rt, email="buyer@example.com"),
        seller=make_user(rt, email="seller@example.com"),
        operator=make_user(rt, email="ops@example.com", operator=True),
        stranger=make_user(rt, email="stranger@example.com"),
    )


def do(rt: Runtime, fn: Any, /, **kwargs: Any) -> Any:
    """Run one use case in its own transaction, as an entry point would."""
    with rt.unit_of_work() as ctx:
        return fn(ctx, **kwargs)


def setup(rt: Runtime, **kw: Any) -> tuple[People, str, list[str]]:
    """A buyer, a seller and an agreed, funded order between them (make_order's keywords apply)."""
    from tests.factories import make_order

    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller, **kw)
    return p, order_id, milestone_ids(rt, order_id)


def milestone_ids(rt: Runtime, order_id: str) -> list[str]:
    return [m.id for m in get_order(rt, order_id)[1]]


def statuses(rt: Runtime, order_id: str) -> tuple[str, list[str]]:
    order, ms = get_order(rt, order_id)
    return order.status, [m.status for m in ms]


def deliver(rt: Runtime, p: People, order_id: str, mid: str, message: str = "done") -> None:
    do(rt, orders.deliver, actor=p.seller, order_id=order_id, milestone_id=mid, message=message)


def approve(rt: Runtime, p: People, order_id: str, mid: str) -> None:
    do(rt, orders.approve, actor=p.buyer, order_id=order_id, milestone_id=mid)


def deliver_and_approve(rt: Runtime, p: People, order_id: str, mid: str) -> None:
    deliver(rt, p, order_id, mid)
    approve(rt, p, order_id, mid)


def transfers(rt: Runtime, order_id: str | None = None, *, kind: str | None = None) -> list[dict[str, Any]]:
    """Every transfer (of an order), oldest first, with its postings as {account: amount}."""
    with rt.reading() as ctx:
        query = select(Transfer).order_by(Transfer.id)
        if order_id is not None:
            query = query.where(Transfer.order_id == order_id)
        if kind is not None:
            query = query.where(Transfer.kind == kind)
        result = []
        for t in ctx.session.scalars(query):
            rows = ctx.session.scalars(select(Posting).where(Posting.transfer_id == t.id)).all()
            result.append({"kind": t.kind, "key": t.idempotency_key, "milestone_id": t.milestone_id,
                           "postings": {r.account: r.amount for r in rows}})
        return result


def event_types(rt: Runtime, order_id: str) -> list[str]:
    with rt.reading() as ctx:
        return list(ctx.session.scalars(select(Event.type).where(Event.order_id == order_id).order_by(Event.id)))


def events_of(rt: Runtime, order_id: str, type_: str) -> list[dict[str, Any]]:
    with rt.reading() as ctx:
        return [e.payload for e in ctx.session.scalars(
            select(Event).where(Event.order_id == order_id, Event.type == type_).order_by(Event.id))]


def balance(rt: Runtime, account: str, currency: str = "USD") -> int:
    with rt.reading() as ctx:
        total = ctx.session.scalar(select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.account == account, Posting.currency == currency))
        return int(total or 0)


def escrow(rt: Runtime, order_id: str, currency: str = "USD") -> int:
    return balance(rt, escrow_account(order_id), currency)


def clearing(rt: Runtime, user: User, currency: str = "USD") -> int:
    return balance(rt, clearing_account(user.id), currency)


def available(rt: Runtime, user: User, currency: str = "USD") -> int:
    return balance(rt, available_account(user.id), currency)


TABLES = (Order, PlanVersion, Milestone, Delivery, Transfer, Posting, ClearingLot, Event, Timer, Dispute, Payout)


def row_counts(rt: Runtime) -> dict[str, int]:
    """How many rows each table holds: a failed command must leave these unchanged."""
    with rt.reading() as ctx:
        return {t.__tablename__: int(ctx.session.scalar(select(func.count()).select_from(t)) or 0)
                for t in TABLES}


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at production cost takes ~0.15 s per user; these tests are about money, not passwords."""
    from argon2 import PasswordHasher

    from milepost.accounts import service as accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
