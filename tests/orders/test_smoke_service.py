from datetime import timedelta

from milepost.orders import service as orders
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, get_order, make_order, make_user


def test_full_happy_path_completes_order(runtime, clock):
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    for m in ms:
        with runtime.unit_of_work() as ctx:
            orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=m.id, message="here")
        with runtime.unit_of_work() as ctx:
            orders.approve(ctx, actor=buyer, order_id=order_id, milestone_id=m.id)
        assert_invariants(runtime)
    clock.advance(timedelta(days=8))
    run_due(runtime)
    order, ms = get_order(runtime, order_id)
    assert order.status == "completed"
    assert all(m.status == "approved" for m in ms)
    assert_invariants(runtime)
