"""Propose, counter, accept (SPEC §2.1): every plan version kept, stale and own proposals refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from milepost.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, NotFound
from milepost.orders import service as orders
from milepost.orders.models import PlanVersion
from tests.factories import get_order, make_order, plan
from tests.orders.helpers import do, event_types, people, row_counts


def propose(rt, p, **over):
    kwargs = dict(actor=p.seller, role="seller", counterparty_email=p.buyer.email, title="Website",
                  currency="USD", milestones=plan(10_000, 20_000))
    kwargs.update(over)
    return do(rt, orders.propose, **kwargs).id


def test_propose_creates_order_with_plan_version_1(runtime):
    p = people(runtime)
    order_id = propose(runtime, p, terms={"review_days": 3})
    order, ms = get_order(runtime, order_id)
    assert (order.status, order.plan_version, order.total_amount) == ("proposed", 1, 30_000)
    assert (order.buyer_id, order.seller_id, order.proposed_by_id) == (p.buyer.id, p.seller.id, p.seller.id)
    assert order.review_days == 3 and order.seller_fee_bps == 1000
    assert [(m.seq, m.status, m.amount) for m in ms] == [(1, "pending", 10_000), (2, "pending", 20_000)]
    assert event_types(runtime, order_id) == ["order.proposed"]


def test_buyer_may_propose_too(runtime):
    p = people(runtime)
    order_id = propose(runtime, p, actor=p.buyer, role="buyer", counterparty_email=p.seller.email)
    order, _ = get_order(runtime, order_id)
    assert (order.buyer_id, order.seller_id) == (p.buyer.id, p.seller.id)


def test_invalid_proposal_reports_every_problem_and_writes_nothing(runtime):
    p = people(runtime)
    before = row_counts(runtime)
    with pytest.raises(InvalidInput) as exc:
        propose(runtime, p, role="boss", title="", currency="usd", counterparty_email="nobody@example.com",
                terms={"review_days": 0, "seller_fee_bps": 0},
                milestones=[{"title": "x\x00", "amount": -1, "due_days": 0}])
    fields = {e["field"] for e in exc.value.errors}
    assert {"role", "title", "currency", "counterparty_email", "terms.review_days", "terms.seller_fee_bps",
            "milestones[0].title", "milestones[0].amount", "milestones[0].due_days"} <= fields
    assert row_counts(runtime) == before


def test_cannot_contract_with_yourself(runtime):
    p = people(runtime)
    with pytest.raises(InvalidInput) as exc:
        propose(runtime, p, counterparty_email=p.seller.email)
    assert exc.value.errors[0]["field"] == "counterparty_email"


def test_counter_keeps_every_plan_version_and_accept_agrees(runtime):
    p = people(runtime)
    order_id = propose(runtime, p)
    do(runtime, orders.counter, actor=p.buyer, order_id=order_id, milestones=plan(15_000), note="cheaper")
    order, ms = get_order(runtime, order_id)
    assert (order.plan_version, order.proposed_by_id, order.total_amount) == (2, p.buyer.id, 15_000)
    assert [m.amount for m in ms] == [15_000]
    with runtime.reading() as ctx:
        versions = ctx.session.scalars(
            select(PlanVersion).where(PlanVersion.order_id == order_id).order_by(PlanVersion.version)).all()
    assert [(v.version, v.proposed_by_id, [m["amount"] for m in v.milestones]) for v in versions] == [
        (1, p.seller.id, [10_000, 20_000]), (2, p.buyer.id, [15_000])]
    do(runtime, orders.accept, actor=p.seller, order_id=order_id, plan_version=2)
    order, _ = get_order(runtime, order_id)
    assert order.status == "agreed" and order.agreed_at is not None
    assert event_types(runtime, order_id) == ["order.proposed", "order.countered", "order.agreed"]


def test_accept_of_stale_plan_version_is_409(runtime):
    p = people(runtime)
    order_id = propose(runtime, p)
    do(runtime, orders.counter, actor=p.buyer, order_id=order_id, terms={"review_days": 2})
    do(runtime, orders.counter, actor=p.seller, order_id=order_id, terms={"review_days": 4})
    with pytest.raises(Conflict) as exc:
        do(runtime, orders.accept, actor=p.buyer, order_id=order_id, plan_version=2)
    assert exc.value.status == 409 and exc.value.code == "stale_plan_version"
    assert exc.value.extra["current_plan_version"] == 3
    assert get_order(runtime, order_id)[0].status == "proposed"


def test_accepting_own_proposal_is_409(runtime):
    p = people(runtime)
    order_id = propose(runtime, p)
    with pytest.raises(Conflict) as exc:
        do(runtime, orders.accept, actor=p.seller, order_id=order_id, plan_version=1)
    assert exc.value.code == "own_proposal"


def test_accept_with_bool_plan_version_is_invalid_input(runtime):
    p = people(runtime)
    order_id = propose(runtime, p)
    for bad in (True, "1", 1.0):
        with pytest.raises(InvalidInput):
            do(runtime, orders.accept, actor=p.buyer, order_id=order_id, plan_version=bad)


def test_strangers_get_not_found_and_operators_cannot_negotiate(runtime):
    p = people(runtime)
    order_id = propose(runtime, p)
    with pytest.raises(NotFound):
        do(runtime, orders.accept, actor=p.stranger, order_id=order_id, plan_version=1)
    with pytest.raises(NotFound):
        do(runtime, orders.counter, actor=p.stranger, order_id=order_id)
    with pytest.raises(NotFound):
        do(runtime, orders.accept, actor=p.buyer, order_id="ord_does_not_exist", plan_version=1)
    with pytest.raises(Forbidden):
        do(runtime, orders.accept, actor=p.operator, order_id=order_id, plan_version=1)


def test_invalid_counter_changes_nothing(runtime):
    p = people(runtime)
    order_id = propose(runtime, p)
    before = row_counts(runtime)
    with pytest.raises(InvalidInput):
        do(runtime, orders.counter, actor=p.buyer, order_id=order_id, milestones=plan(1))
    assert row_counts(runtime) == before
    order, ms = get_order(runtime, order_id)
    assert order.plan_version == 1 and [m.amount for m in ms] == [10_000, 20_000]


def test_counter_or_accept_after_agreement_is_illegal(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, funded=False)
    with pytest.raises(IllegalTransition):
        do(runtime, orders.counter, actor=p.buyer, order_id=order_id)
    with pytest.raises(IllegalTransition):
        do(runtime, orders.accept, actor=p.buyer, order_id=order_id, plan_version=1)


def test_terms_are_frozen_when_agreed(runtime):
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller, funded=False)
    runtime.settings.__dict__["default_terms"] = runtime.settings.default_terms.__class__(review_days=1)
    try:
        order, _ = get_order(runtime, order_id)
        assert order.review_days == 7
    finally:
        del runtime.settings.__dict__["default_terms"]


def test_withdrawing_a_proposal_cancels_it(runtime):
    p = people(runtime)
    order_id = propose(runtime, p)
    do(runtime, orders.cancel, actor=p.seller, order_id=order_id, reason="changed my mind")
    status, ms = get_order(runtime, order_id)[0].status, get_order(runtime, order_id)[1]
    assert status == "cancelled" and all(m.status == "cancelled" for m in ms)
