"""Small keyword-only factories and the invariant check every money-moving test ends with."""

from __future__ import annotations

from typing import Any

from milepost.accounts import service as accounts
from milepost.accounts.models import User
from milepost.ledger.audit import run_audit
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.models import Milestone, Order
from milepost.runtime import Runtime

PASSWORD = "correct horse battery"


def make_user(rt: Runtime, *, email: str, name: str | None = None, operator: bool = False) -> User:
    with rt.unit_of_work() as ctx:
        return accounts.create_user(
            ctx, email=email, password=PASSWORD, name=name or email.split("@")[0].title(),
            is_operator=operator,
        )


def plan(*amounts: int, due_days: int = 5, revisions: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "title": f"Milestone {i}",
            "description": "",
            "acceptance_criteria": [f"criterion {i}"],
            "amount": amount,
            "due_days": due_days,
            **({"revisions": revisions} if revisions is not None else {}),
        }
        for i, amount in enumerate(amounts, start=1)
    ]


def make_order(
    rt: Runtime,
    *,
    buyer: User,
    seller: User,
    amounts: tuple[int, ...] = (10_000, 20_000, 30_000),
    currency: str = "USD",
    terms: dict[str, Any] | None = None,
    agreed: bool = True,
    funded: bool = True,
) -> str:
    with rt.unit_of_work() as ctx:
        order = orders.propose(
            ctx, actor=seller, role="seller", counterparty_email=buyer.email, title="Website",
            currency=currency, terms=terms, milestones=plan(*amounts),
        )
        order_id = order.id
    if agreed:
        with rt.unit_of_work() as ctx:
            orders.accept(ctx, actor=buyer, order_id=order_id, plan_version=1)
    if agreed and funded:
        with rt.unit_of_work() as ctx:
            orders.fund(ctx, actor=buyer, order_id=order_id)
    return order_id


def get_order(rt: Runtime, order_id: str) -> tuple[Order, list[Milestone]]:
    with rt.reading() as ctx:
        order = orders_repo.get_order(ctx.session, order_id)
        assert order is not None
        return order, orders_repo.milestones_of(ctx.session, order_id)


def assert_invariants(rt: Runtime) -> None:
    """SPEC §2.5: every invariant holds (the same checks as `milepost audit`)."""
    with rt.reading() as ctx:
        report = run_audit(ctx.session)
    failed = {c.name: c.violations for c in report.checks if not c.ok}
    assert not failed, f"ledger invariants violated: {failed}"
