"""Concurrent conflicting commands on PostgreSQL (SPEC §7): exactly one wins, every invariant holds."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from milepost.errors import MilepostError
from milepost.orders import service as orders
from milepost.payouts import service as payouts
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, make_order
from tests.orders.helpers import (
    available,
    deliver,
    deliver_and_approve,
    do,
    milestone_ids,
    people,
    statuses,
    transfers,
)

ROUNDS = 3


@pytest.fixture
def pg_runtime(runtime, backend):
    assert backend == "postgres"  # see conftest.py: these tests run on PostgreSQL only
    return runtime


def race(*calls):
    """Run the calls at the same moment in threads; return each one's result or domain error."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except MilepostError as exc:
            results[i] = exc
        except Exception as exc:  # anything else is a failure of the test: keep it to report
            results[i] = ("unexpected", exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    unexpected = [r for r in results if isinstance(r, tuple)]
    assert not unexpected, unexpected
    return results


def wins(results):
    return [r for r in results if not isinstance(r, MilepostError)]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_approvals_of_one_milestone(pg_runtime, round_):
    rt = pg_runtime
    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller)
    mid = milestone_ids(rt, order_id)[0]
    deliver(rt, p, order_id, mid)
    results = race(*[lambda: do(rt, orders.approve, actor=p.buyer, order_id=order_id, milestone_id=mid)] * 2)
    assert len(wins(results)) == 1
    assert len(transfers(rt, order_id, kind="release")) == 1
    assert statuses(rt, order_id)[1] == ["approved", "in_progress", "pending"]
    assert_invariants(rt)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_approve_versus_cancel(pg_runtime, round_):
    rt = pg_runtime
    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller)
    mid = milestone_ids(rt, order_id)[0]
    deliver(rt, p, order_id, mid)
    results = race(
        lambda: do(rt, orders.approve, actor=p.buyer, order_id=order_id, milestone_id=mid),
        lambda: do(rt, orders.cancel, actor=p.seller, order_id=order_id, reason="stop"),
    )
    # Cancel first is blocked by the delivered milestone; approve first lets the cancel go ahead.
    # Either way the approval wins and the milestone is paid exactly once.
    assert not isinstance(results[0], MilepostError)
    assert statuses(rt, order_id)[1][0] == "approved"
    assert len([t for t in transfers(rt, order_id, kind="release") if t["milestone_id"] == mid]) == 1
    if not isinstance(results[1], MilepostError):
        assert statuses(rt, order_id) == ("completed", ["approved", "cancelled", "cancelled"])
    assert_invariants(rt)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_workers_on_one_due_timer(pg_runtime, clock, round_):
    rt = pg_runtime
    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    deliver(rt, p, order_id, milestone_ids(rt, order_id)[0])
    clock.advance(timedelta(days=7))
    results = race(lambda: run_due(rt), lambda: run_due(rt))
    assert sum(r.failed for r in results) == 0
    assert sum(r.fired for r in results) == 2  # the auto-approve and the lateness timer, once each
    assert len(transfers(rt, order_id, kind="release")) == 1
    assert statuses(rt, order_id) == ("completed", ["approved"])
    assert_invariants(rt)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_fund_twice_in_parallel(pg_runtime, round_):
    rt = pg_runtime
    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller, funded=False)
    results = race(*[lambda: do(rt, orders.fund, actor=p.buyer, order_id=order_id)] * 2)
    assert len(wins(results)) == 1
    assert len(transfers(rt, order_id, kind="fund")) == 3
    assert_invariants(rt)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_payouts_of_the_whole_available_balance(pg_runtime, clock, round_):
    rt = pg_runtime
    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    deliver_and_approve(rt, p, order_id, milestone_ids(rt, order_id)[0])
    clock.advance(timedelta(days=7))
    run_due(rt)
    assert available(rt, p.seller) == 9_000
    results = race(*[lambda: do(rt, payouts.create_payout, actor=p.seller, amount=9_000, currency="USD")] * 2)
    assert len(wins(results)) == 1
    assert available(rt, p.seller) == 0
    assert len(transfers(rt, kind="payout")) == 1
    assert_invariants(rt)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_buyer_approval_versus_auto_approve_worker(pg_runtime, clock, round_):
    rt = pg_runtime
    p = people(rt)
    order_id = make_order(rt, buyer=p.buyer, seller=p.seller, amounts=(10_000,))
    mid = milestone_ids(rt, order_id)[0]
    deliver(rt, p, order_id, mid)
    clock.advance(timedelta(days=7))
    results = race(
        lambda: do(rt, orders.approve, actor=p.buyer, order_id=order_id, milestone_id=mid),
        lambda: run_due(rt),
    )
    assert results[1].failed == 0
    assert len(transfers(rt, order_id, kind="release")) == 1
    assert statuses(rt, order_id) == ("completed", ["approved"])
    assert_invariants(rt)
