"""Reviews: cancelled orders can be reviewed, once per party; strangers get 404."""

from __future__ import annotations

import pytest

from milepost.errors import Conflict, IllegalTransition, NotFound
from milepost.orders import service as orders
from milepost.planning.relationships import history_between
from milepost.reviews import service as reviews
from tests.factories import assert_invariants, make_order, make_user


def test_cancelled_order_is_reviewed_once_by_each_party(runtime):
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    stranger = make_user(runtime, email="stranger@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    with runtime.unit_of_work() as ctx, pytest.raises(IllegalTransition):
        reviews.leave_review(ctx, actor=buyer, order_id=order_id, rating=5, text="early")
    with runtime.unit_of_work() as ctx:
        orders.cancel(ctx, actor=buyer, order_id=order_id, reason="Changed plans")
    with runtime.unit_of_work() as ctx:
        reviews.leave_review(ctx, actor=buyer, order_id=order_id, rating=4, text="Fair about it")
    with runtime.unit_of_work() as ctx:
        reviews.leave_review(ctx, actor=seller, order_id=order_id, rating=2, text="Cancelled late")
    with runtime.unit_of_work() as ctx, pytest.raises(Conflict):
        reviews.leave_review(ctx, actor=buyer, order_id=order_id, rating=1)
    with runtime.unit_of_work() as ctx, pytest.raises(NotFound):
        reviews.leave_review(ctx, actor=stranger, order_id=order_id, rating=1)
    with runtime.reading() as ctx:
        got = reviews.reviews_of_order(ctx, actor=seller, order_id=order_id)
        assert sorted(r.rating for r in got) == [2, 4]
        history = history_between(ctx.session, buyer.id, seller.id)
        assert history.orders_cancelled == 1 and len(history.reviews) == 2
    assert_invariants(runtime)
