"""Hypothesis-generated histories: exports always pass the tools and reproduce the API's balances,
period statements always tie out, and the forecast never counts money that is not the seller's."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milepost.cashflow import exports, forecast, service, statements
from milepost.cashflow.exports import ExportFormat, beancount_account
from milepost.disputes import service as disputes
from milepost.errors import MilepostError
from milepost.orders import service as orders
from milepost.payouts import service as payouts
from milepost.timers.worker import run_due
from tests.cashflow.tools import (
    api_view,
    bean_check,
    beancount_balances,
    csv_balances,
    hledger_balances,
    hledger_check,
    party_view,
    write_export,
)
from tests.factories import assert_invariants, get_order, make_order, make_user

_run = itertools.count()

order_spec = st.tuples(
    st.lists(st.integers(5_000, 50_000), min_size=1, max_size=3),
    st.sampled_from(["USD", "JPY", "BHD"]),
    st.sampled_from(["per_milestone", "on_completion"]),
    st.sampled_from(["upfront", "per_milestone"]),
)
step = st.tuples(st.sampled_from(["deliver", "approve", "revise", "dispute", "cancel", "wait", "payout"]),
                 st.integers(0, 10))


@settings(max_examples=5, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(specs=st.lists(order_spec, min_size=1, max_size=3), steps=st.lists(step, min_size=3, max_size=18))
def test_generated_history_exports_tie_out(runtime, clock, tmp_path_factory, specs, steps):
    n = next(_run)
    seller = make_user(runtime, email=f"s{n}@example.com")
    buyer = make_user(runtime, email=f"b{n}@example.com")
    operator = make_user(runtime, email=f"op{n}@example.com", operator=True)
    order_ids = [
        make_order(runtime, buyer=buyer, seller=seller, amounts=tuple(amounts), currency=currency,
                   terms={"release": release, "funding": funding, "clearance_days": 2, "review_days": 2})
        for amounts, currency, release, funding in specs
    ]
    for action, pick in steps:
        order_id = order_ids[pick % len(order_ids)]
        _, milestones = get_order(runtime, order_id)
        m = milestones[pick % len(milestones)]
        try:
            with runtime.unit_of_work() as ctx:
                if action == "deliver":
                    orders.deliver(ctx, actor=seller, order_id=order_id, milestone_id=m.id, message="x")
                elif action == "approve":
                    orders.approve(ctx, actor=buyer, order_id=order_id, milestone_id=m.id)
                elif action == "revise":
                    orders.request_revision(ctx, actor=buyer, order_id=order_id, milestone_id=m.id, reason="r")
                elif action == "dispute":
                    d = disputes.open_dispute(ctx, actor=buyer, order_id=order_id, milestone_id=m.id, reason="d",
                                              seller_amount=m.amount // 2)
                    if pick % 2:
                        disputes.resolve(ctx, actor=operator, dispute_id=d.id, seller_amount=m.amount // 3)
                elif action == "cancel":
                    orders.cancel(ctx, actor=buyer if pick % 2 else seller, order_id=order_id, reason="stop")
                elif action == "payout":
                    for b in service.balances_for(ctx.session, seller.id):
                        if b.available >= ctx.settings.min_payout_major * 1000:
                            payouts.create_payout(ctx, actor=seller, amount=b.available - pick, currency=b.currency)
                            break
        except MilepostError:
            pass  # illegal in this state: the history just goes on
        if action == "wait":
            clock.advance(timedelta(days=pick % 4 + 1))
            run_due(runtime)
        else:
            with runtime.unit_of_work() as ctx:
                for o in order_ids:  # per-milestone funding: the buyer funds what is next
                    with contextlib.suppress(MilepostError):  # nothing to fund right now
                        orders.fund(ctx, actor=buyer, order_id=o)
    assert_invariants(runtime)

    tmp = tmp_path_factory.mktemp(f"gen{n}")
    sold = set(order_ids)
    for user, seller_orders, buyer_orders in ((seller, sold, set()), (buyer, set(), sold)):
        with runtime.reading() as ctx:
            expected = api_view(service.balances_for(ctx.session, user.id))
        journal = write_export(runtime, ExportFormat.HLEDGER, tmp / f"{user.id}.journal", user_id=user.id)
        hledger_check(journal)
        got = party_view(hledger_balances(journal), user_id=user.id, seller_orders=seller_orders,
                         buyer_orders=buyer_orders)
        assert got == expected
        table = write_export(runtime, ExportFormat.CSV, tmp / f"{user.id}.csv", user_id=user.id)
        from_csv = csv_balances(table)
        bean = write_export(runtime, ExportFormat.BEANCOUNT, tmp / f"{user.id}.beancount", user_id=user.id)
        bean_check(bean)
        assert beancount_balances(bean) == {(beancount_account(a), c): v for (a, c), v in from_csv.items()}

    with runtime.reading() as ctx:
        day = clock.now().date().isoformat()
        for period in (exports.Period(), exports.parse_period(None, day), exports.parse_period(day, None)):
            for s in statements.period_statement(ctx.session, seller_id=seller.id, period=period):
                assert s.ties_out, s
        f = forecast.seller_forecast(ctx.session, seller.id, now=ctx.now, all_lines=True)
        balances = {b.currency: b for b in service.balances_for(ctx.session, seller.id)}
        disputed = {(e.currency): 0 for e in f.excluded}
        for currency, b in balances.items():
            lines = [line for line in f.lines if line.currency == currency]
            # Everything the seller holds or is owed is forecast (at most), net of fees.
            certain = sum(line.amount for line in lines if line.certainty in ("available", "clearing"))
            assert certain == b.available + b.clearing
            funded_open = sum(line.gross_amount for line in lines if line.funded is not False
                              and line.certainty not in ("available", "clearing"))
            assert funded_open <= b.in_escrow + disputed.get(currency, 0)
        assert all(line.amount == line.gross_amount - line.fee_amount for line in f.lines)
