"""Change orders on both databases: top-up, refund, decline, staleness, and the race with approval."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from milepost.changes import service as changes
from milepost.errors import Conflict, IllegalTransition, InvalidInput
from milepost.ledger.models import Transfer
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from tests.factories import assert_invariants, get_order, make_order, make_user, plan


@pytest.fixture
def pair(runtime):
    return make_user(runtime, email="buyer@example.com"), make_user(runtime, email="seller@example.com")


def transfers(runtime, order_id):
    with runtime.reading() as ctx:
        return list(ctx.session.scalars(select(Transfer).where(Transfer.order_id == order_id).order_by(Transfer.id)))


def test_accepted_change_tops_up_escrow_and_writes_a_plan_version(runtime, pair):
    buyer, seller = pair
    order_id = make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000, 20_000))
    _, ms = get_order(runtime, order_id)
    with runtime.unit_of_work() as ctx:
        change = changes.propose_change(
            ctx, actor=seller, order_id=order_id, reason="Two more pages",
            update=[{"milestone_id": ms[0].id, "amount": 15_000, "due_days": 9}],
            add=plan(7_000),
        )
        assert change.escrow_delta_amount == 5_000 + 7_000
        change_id = change.id
    with runtime.unit_of_work() as ctx:
        changes.accept_change(ctx, actor=buyer, change_id=change_id)
    order, ms = get_order(runtime, order_id)
    assert order.plan_version == 2 and order.total_amount == 42_000
    assert [(m.amount, m.funded_amount, m.status) for m in ms] == [
        (15_000, 15_000, "in_progress"), (20_000, 20_000, "pending"), (7_000, 7_000, "pending")]
    assert ms[0].due_days == 9
    kinds = [t.kind for t in transfers(runtime, order_id)]
    assert kinds == ["fund", "fund", "fund", "fund"]  # 2 original + top-up + new milestone
    with runtime.reading() as ctx:
        versions = orders_repo.plan_versions(ctx.session, order_id)
        assert [v.version for v in versions] == [1, 2] and change_id in versions[1].note
    assert_invariants(runtime)
    # The new plan runs to completion with every invariant intact.
    for m in ms:
        with runtime.unit_of_work() as ctx:
            orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=m.id, message="done")
        with runtime.unit_of_work() as ctx:
            orders.approve(ctx, actor=buyer, order_id=order_id, milestone_id=m.id)
    order, _ = get_order(runtime, order_id)
    assert order.status == "completed"
    assert_invariants(runtime)


def test_accepted_change_refunds_removed_and_cheaper_milestones(runtime, pair):
    buyer, seller = pair
    order_id = make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000, 20_000, 30_000),
                          terms=None)
    _, ms = get_order(runtime, order_id)
    with runtime.unit_of_work() as ctx:
        cid = changes.propose_change(
            ctx, actor=buyer, order_id=order_id, reason="Budget cut",
            remove=[ms[2].id], update=[{"milestone_id": ms[1].id, "amount": 12_000},
                                        {"milestone_id": ms[0].id, "amount": 8_000}],
        ).id
    with runtime.unit_of_work() as ctx:
        change = changes.accept_change(ctx, actor=seller, change_id=cid)
        assert change.escrow_delta_amount == -30_000 - 8_000 - 2_000
    order, ms = get_order(runtime, order_id)
    assert order.total_amount == 20_000
    assert [(m.amount, m.status) for m in ms] == [(8_000, "in_progress"), (12_000, "pending"), (30_000, "cancelled")]
    assert ms[2].refunded_amount == 30_000
    assert ms[1].funded_amount == 12_000 and ms[0].funded_amount == 8_000
    assert_invariants(runtime)
    for m in ms[:2]:
        with runtime.unit_of_work() as ctx:
            orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=m.id, message="done")
        with runtime.unit_of_work() as ctx:
            orders.approve(ctx, actor=buyer, order_id=order_id, milestone_id=m.id)
    order, _ = get_order(runtime, order_id)
    assert order.status == "completed"
    assert_invariants(runtime)


def test_per_milestone_funding_leaves_new_milestones_unfunded(runtime, pair):
    buyer, seller = pair
    order_id = make_order(runtime, buyer=buyer, seller=seller, amounts=(10_000,),
                          terms={"funding": "per_milestone"})
    with runtime.unit_of_work() as ctx:
        cid = changes.propose_change(ctx, actor=seller, order_id=order_id, reason="More", add=plan(5_000)).id
    with runtime.unit_of_work() as ctx:
        changes.accept_change(ctx, actor=buyer, change_id=cid)
    _, ms = get_order(runtime, order_id)
    assert [(m.status, m.funded_amount) for m in ms] == [("in_progress", 10_000), ("pending", 0)]
    assert_invariants(runtime)


def test_declined_change_changes_nothing(runtime, pair):
    buyer, seller = pair
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    with runtime.unit_of_work() as ctx:
        cid = changes.propose_change(ctx, actor=seller, order_id=order_id, reason="More money",
                                     update=[{"milestone_id": ms[1].id, "amount": 99_000}]).id
    with runtime.unit_of_work() as ctx, pytest.raises(Conflict):
        changes.accept_change(ctx, actor=seller, change_id=cid)  # not your own proposal
    with runtime.unit_of_work() as ctx:
        assert changes.decline_change(ctx, actor=buyer, change_id=cid, note="no").status == "declined"
    with runtime.unit_of_work() as ctx, pytest.raises(IllegalTransition):
        changes.accept_change(ctx, actor=buyer, change_id=cid)
    order, after = get_order(runtime, order_id)
    assert order.plan_version == 1 and [m.amount for m in after] == [m.amount for m in ms]
    assert_invariants(runtime)


def test_change_refuses_started_and_delivered_milestones(runtime, pair):
    buyer, seller = pair
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    with runtime.unit_of_work() as ctx, pytest.raises(Conflict):
        changes.propose_change(ctx, actor=buyer, order_id=order_id, reason="x", remove=[ms[0].id])
    with runtime.unit_of_work() as ctx:
        orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=ms[0].id, message="done")
    with runtime.unit_of_work() as ctx, pytest.raises(Conflict):
        changes.propose_change(ctx, actor=buyer, order_id=order_id, reason="x",
                               update=[{"milestone_id": ms[0].id, "amount": 1_000}])
    with runtime.unit_of_work() as ctx, pytest.raises(InvalidInput):
        changes.propose_change(ctx, actor=buyer, order_id=order_id, reason="x",
                               update=[{"milestone_id": ms[1].id, "amount": 1}])


def test_change_goes_stale_when_the_milestone_moved_on(runtime, pair):
    buyer, seller = pair
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    with runtime.unit_of_work() as ctx:
        cid = changes.propose_change(ctx, actor=seller, order_id=order_id, reason="scope",
                                     update=[{"milestone_id": ms[0].id, "amount": 12_000}]).id
    with runtime.unit_of_work() as ctx:
        orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=ms[0].id, message="done")
    with runtime.unit_of_work() as ctx, pytest.raises(Conflict) as err:
        changes.accept_change(ctx, actor=buyer, change_id=cid)
    assert err.value.code == "stale_change"
    assert_invariants(runtime)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite serialises writers
def test_concurrent_change_and_approval_never_break_invariants(runtime, pair, backend):
    """Removing milestone 2 races the approval of milestone 1, which would start milestone 2."""
    buyer, seller = pair
    for _ in range(4):
        _race_once(runtime, buyer, seller)


def _race_once(runtime, buyer, seller):
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    with runtime.unit_of_work() as ctx:
        orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=ms[0].id, message="done")
    with runtime.unit_of_work() as ctx:
        cid = changes.propose_change(ctx, actor=buyer, order_id=order_id, reason="drop", remove=[ms[1].id]).id
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def run(name, fn):
        barrier.wait()
        try:
            with runtime.unit_of_work() as ctx:
                fn(ctx)
            outcomes[name] = "ok"
        except Conflict as exc:
            outcomes[name] = exc.code

    threads = [
        threading.Thread(target=run, args=("approve", lambda ctx: orders.approve(
            ctx, actor=buyer, order_id=order_id, milestone_id=ms[0].id))),
        threading.Thread(target=run, args=("change", lambda ctx: changes.accept_change(
            ctx, actor=seller, change_id=cid))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes["approve"] == "ok"
    _, after = get_order(runtime, order_id)
    if outcomes["change"] == "ok":
        assert [m.status for m in after] == ["approved", "cancelled", "in_progress"]
    else:
        assert outcomes["change"] == "stale_change"
        assert [m.status for m in after] == ["approved", "in_progress", "pending"]
    assert_invariants(runtime)
