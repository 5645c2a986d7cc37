"""Extensions: accepted, declined, and accepted by the buyer's silence (clock + timer worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from milepost.changes import extensions
from milepost.errors import Conflict, Forbidden
from milepost.timers.worker import run_due
from tests.factories import assert_invariants, get_order, make_order, make_user


@pytest.fixture
def running(runtime):
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    return buyer, seller, order_id, ms[0]


def ask(runtime, seller, order_id, m, days=3):
    with runtime.unit_of_work() as ctx:
        return extensions.request_extension(ctx, actor=seller, order_id=order_id, milestone_id=m.id,
                                            days=days, reason="Client feedback came late").id


def test_buyer_accepts_an_extension(runtime, running):
    buyer, seller, order_id, m = running
    xid = ask(runtime, seller, order_id, m)
    with runtime.unit_of_work() as ctx, pytest.raises(Conflict):
        extensions.request_extension(ctx, actor=seller, order_id=order_id, milestone_id=m.id, days=1, reason="x")
    with runtime.unit_of_work() as ctx, pytest.raises(Forbidden):
        extensions.accept_extension(ctx, actor=seller, extension_id=xid)
    with runtime.unit_of_work() as ctx:
        ext = extensions.accept_extension(ctx, actor=buyer, extension_id=xid)
        assert ext.status == "accepted" and ext.decided_how == "buyer"
    _, ms = get_order(runtime, order_id)
    assert ms[0].due_at == m.due_at + timedelta(days=3)
    assert_invariants(runtime)


def test_buyer_declines_an_extension(runtime, running):
    buyer, seller, order_id, m = running
    xid = ask(runtime, seller, order_id, m)
    with runtime.unit_of_work() as ctx:
        assert extensions.decline_extension(ctx, actor=buyer, extension_id=xid, note="no").status == "declined"
    _, ms = get_order(runtime, order_id)
    assert ms[0].due_at == m.due_at


def test_silence_accepts_after_the_configured_hours(runtime, running, clock):
    buyer, seller, order_id, m = running
    xid = ask(runtime, seller, order_id, m, days=2)
    clock.advance(timedelta(hours=47))
    run_due(runtime)
    with runtime.reading() as ctx:
        assert extensions.get_extension(ctx, actor=buyer, extension_id=xid).status == "requested"
    clock.advance(timedelta(hours=2))
    run_due(runtime)
    with runtime.reading() as ctx:
        ext = extensions.get_extension(ctx, actor=buyer, extension_id=xid)
        assert ext.status == "accepted" and ext.decided_how == "silence"
    _, ms = get_order(runtime, order_id)
    assert ms[0].due_at == m.due_at + timedelta(days=2)
    assert_invariants(runtime)


def test_silence_after_an_answer_does_nothing(runtime, running, clock):
    buyer, seller, order_id, m = running
    xid = ask(runtime, seller, order_id, m, days=2)
    with runtime.unit_of_work() as ctx:
        extensions.decline_extension(ctx, actor=buyer, extension_id=xid)
    clock.advance(timedelta(hours=49))
    run_due(runtime)
    _, ms = get_order(runtime, order_id)
    assert ms[0].due_at == m.due_at
