"""A realistic seller history over several currencies, used by the balances, export and iCal tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from milepost.accounts.models import User
from milepost.disputes import service as disputes
from milepost.orders import service as orders
from milepost.payouts import service as payouts
from milepost.runtime import Runtime
from milepost.timers.worker import run_due
from tests.factories import get_order, make_order, make_user


@dataclass
class History:
    seller: User
    buyer: User
    other_buyer: User
    operator: User
    orders: dict[str, str]


def deliver(rt: Runtime, seller: User, order_id: str, milestone_id: str) -> None:
    with rt.unit_of_work() as ctx:
        orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=milestone_id, message="done")


def approve(rt: Runtime, buyer: User, order_id: str, milestone_id: str) -> None:
    with rt.unit_of_work() as ctx:
        orders.approve(ctx, actor=buyer, order_id=order_id, milestone_id=milestone_id)


def build_history(rt: Runtime, clock) -> History:
    seller = make_user(rt, email="seller@example.com")
    buyer = make_user(rt, email="buyer@example.com")
    other = make_user(rt, email="other@example.com")
    operator = make_user(rt, email="op@example.com", operator=True)
    ids: dict[str, str] = {}

    # USD, released per milestone: #1 approved and paid out, #2 delivered, #3 in the queue.
    ids["website"] = make_order(rt, buyer=buyer, seller=seller, amounts=(10_000, 20_001, 30_000))
    _, ms = get_order(rt, ids["website"])
    deliver(rt, seller, ids["website"], ms[0].id)
    approve(rt, buyer, ids["website"], ms[0].id)
    clock.advance(timedelta(days=8))
    run_due(rt)
    with rt.unit_of_work() as ctx:
        payouts.create_payout(ctx, actor=seller, amount=5_000, currency="USD")
    with rt.unit_of_work() as ctx:
        payouts.create_payout(ctx, actor=seller, amount=3_000, currency="USD")
    deliver(rt, seller, ids["website"], ms[1].id)

    # EUR, released on completion: #1 approved (held), #2 in progress.
    ids["illustrations"] = make_order(rt, buyer=other, seller=seller, amounts=(5_000, 7_777), currency="EUR",
                                      terms={"release": "on_completion"})
    _, ms = get_order(rt, ids["illustrations"])
    deliver(rt, seller, ids["illustrations"], ms[0].id)
    approve(rt, other, ids["illustrations"], ms[0].id)

    # JPY, funded per milestone: #1 approved (clearing), #2 not funded yet.
    ids["book"] = make_order(rt, buyer=buyer, seller=seller, amounts=(5_000, 6_000), currency="JPY",
                             terms={"funding": "per_milestone", "clearance_days": 3})
    _, ms = get_order(rt, ids["book"])
    deliver(rt, seller, ids["book"], ms[0].id)
    approve(rt, buyer, ids["book"], ms[0].id)

    # USD, disputed: #1 in dispute, #2 waits.
    ids["app"] = make_order(rt, buyer=buyer, seller=seller, amounts=(8_000, 9_000))
    _, ms = get_order(rt, ids["app"])
    with rt.unit_of_work() as ctx:
        disputes.open_dispute(ctx, actor=buyer, order_id=ids["app"], milestone_id=ms[0].id, reason="not as agreed",
                              seller_amount=2_000)

    # USD, cancelled by the buyer after the first milestone: refunds.
    ids["video"] = make_order(rt, buyer=buyer, seller=seller, amounts=(6_000, 4_000))
    _, ms = get_order(rt, ids["video"])
    deliver(rt, seller, ids["video"], ms[0].id)
    approve(rt, buyer, ids["video"], ms[0].id)
    clock.advance(timedelta(days=1))
    with rt.unit_of_work() as ctx:
        orders.cancel(ctx, actor=buyer, order_id=ids["video"], reason="budget cut")
    clock.advance(timedelta(hours=3))
    run_due(rt)
    return History(seller, buyer, other, operator, ids)
