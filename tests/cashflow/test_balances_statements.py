"""Balances per currency on both databases, payout statements (FIFO) and period statements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from milepost.accounts import service as accounts
from milepost.app import create_app
from milepost.cashflow import exports, service, statements
from milepost.errors import InvalidInput, NotFound
from milepost.payouts import service as payouts
from tests.cashflow.history import approve, build_history, deliver
from tests.factories import assert_invariants, get_order, make_order, make_user


def test_balances_for_seller_and_buyers(runtime, clock):
    h = build_history(runtime, clock)
    with runtime.reading() as ctx:
        seller = {b.currency: b for b in service.balances_for(ctx.session, h.seller.id)}
        buyer = {b.currency: b for b in service.balances_for(ctx.session, h.buyer.id)}
        other = {b.currency: b for b in service.balances_for(ctx.session, h.other_buyer.id)}
    usd = seller["USD"]
    # website: 10000+20001+30000 funded, #1 released; app: 17000 in escrow (8000 disputed).
    assert usd.in_escrow == 20_001 + 30_000 + 17_000
    assert sorted(o.amount for o in usd.in_escrow_by_order) == [17_000, 50_001]
    # website #1 cleared (9000), paid out 8000; video #1 (6000 → 5400 net) still clearing.
    assert (usd.clearing, usd.available, usd.paid_out) == (5_400, 1_000, 8_000)
    assert (seller["JPY"].clearing, seller["JPY"].in_escrow) == (4_500, 0)
    assert seller["EUR"].in_escrow == 5_000 + 7_777  # approved #1 held on completion
    assert (usd.committed, usd.refunded, usd.spent) == (0, 0, 0)
    # Buyer mirror: committed + refunded + spent = everything paid in.
    assert buyer["USD"].committed == usd.in_escrow
    assert buyer["USD"].refunded == 4_000  # video #2 cancelled by the buyer (no kill fee)
    assert buyer["USD"].spent == 10_000 + 6_000
    assert (buyer["JPY"].committed, buyer["JPY"].spent) == (0, 5_000)
    assert other["EUR"].committed == 12_777 and other["EUR"].in_escrow == 0
    assert_invariants(runtime)


def test_balances_payload_shape(runtime, clock):
    h = build_history(runtime, clock)
    with runtime.reading() as ctx:
        body = service.balances_payload(ctx.session, h.seller.id)
    assert [b["currency"] for b in body["balances"]] == ["EUR", "JPY", "USD"]
    for b in body["balances"]:
        for key in ("in_escrow", "clearing", "available", "paid_out", "committed", "refunded", "spent",
                    "order_count"):
            assert isinstance(b[key], int)
        assert b["order_count"] == len(b["in_escrow_by_order"])  # one page holds them all
    assert body["next_cursor"] is None


def _many_orders(runtime, clock):
    """A seller with orders in escrow in two currencies, some partly released, one fully released."""
    h = build_history(runtime, clock)
    for i in range(7):
        order_id = make_order(runtime, buyer=h.buyer, seller=h.seller, amounts=(1_000 + i, 2_000),
                              currency="EUR" if i % 3 else "USD")
        if i % 2:
            _, ms = get_order(runtime, order_id)
            deliver(runtime, h.seller, order_id, ms[0].id)
            approve(runtime, h.buyer, order_id, ms[0].id)
    return h


def test_orders_in_escrow_paged_concatenate_to_the_whole_list_and_sum_to_the_totals(runtime, clock):
    h = _many_orders(runtime, clock)
    with runtime.reading() as ctx:
        whole = service.balances_page(ctx.session, h.seller.id, all_orders=True)
        totals_only = service.balances_page(ctx.session, h.seller.id, limit=0)
    assert whole.next_cursor is None
    everything = sorted((o.order_id, b.currency, o.amount) for b in whole.balances for o in b.in_escrow_by_order)
    assert len(everything) == sum(b.order_count for b in whole.balances) == 3 + 7  # the history's + ours
    for b in whole.balances:
        assert sum(o.amount for o in b.in_escrow_by_order) == b.in_escrow
        assert len(b.in_escrow_by_order) == b.order_count
        assert all(o.amount != 0 for o in b.in_escrow_by_order)
    # The totals never depend on the page.
    strip = [(b.currency, b.in_escrow, b.order_count, b.clearing, b.available, b.paid_out) for b in whole.balances]
    assert [(b.currency, b.in_escrow, b.order_count, b.clearing, b.available, b.paid_out)
            for b in totals_only.balances] == strip
    assert not any(b.in_escrow_by_order for b in totals_only.balances) and totals_only.next_cursor is None
    for size in (1, 2, 4, 9, 100):
        pages, after = [], None
        while True:
            with runtime.reading() as ctx:
                page = service.balances_page(ctx.session, h.seller.id, limit=size, after=after)
            rows = [(o.order_id, b.currency, o.amount) for b in page.balances for o in b.in_escrow_by_order]
            assert len(rows) <= size
            assert [(b.currency, b.in_escrow, b.order_count, b.clearing, b.available, b.paid_out)
                    for b in page.balances] == strip
            pages.extend(sorted(rows))
            after = page.next_cursor
            if after is None:
                break
        assert pages == everything  # in order id order, each order once


@pytest.mark.parametrize("cursor", ["", "x", "@@@", "W10", "WzEsMl0", "WyJhIiwiYiJd", "a" * 201,
                                    service.encode_cursor("o" * 41), service.encode_cursor("o\x00")])
def test_bad_balances_cursor_is_invalid_input(cursor):
    with pytest.raises(InvalidInput):
        service.decode_cursor(cursor)


@pytest.mark.parametrize("limit", [-1, service.MAX_ORDERS + 1, True])
def test_bad_balances_limit_is_invalid_input(limit):
    with pytest.raises(InvalidInput):
        service.orders_limit(limit)


def test_balances_endpoint_pages_the_orders_and_rejects_bad_input(runtime, clock):
    h = _many_orders(runtime, clock)
    with runtime.unit_of_work() as ctx:
        token = accounts.issue_token(ctx, h.seller)
    client = TestClient(create_app(runtime))
    client.headers["Authorization"] = f"Bearer {token}"
    whole = client.get("/v1/balances").json()
    first = client.get("/v1/balances", params={"limit": 5}).json()
    rest = client.get("/v1/balances", params={"limit": 5, "after": first["next_cursor"]}).json()
    assert whole["next_cursor"] is None and first["next_cursor"] and rest["next_cursor"] is None

    def orders(body):
        return sorted((o["order_id"], b["currency"]) for b in body["balances"] for o in b["in_escrow_by_order"])

    assert len(orders(first)) == 5 and orders(first) + orders(rest) == orders(whole)
    for body in (first, rest):
        assert [{k: v for k, v in b.items() if k != "in_escrow_by_order"} for b in body["balances"]] == [
            {k: v for k, v in b.items() if k != "in_escrow_by_order"} for b in whole["balances"]]
    for bad in ({"limit": 0}, {"limit": service.MAX_ORDERS + 1}, {"limit": "ten"}, {"after": "nope"},
                {"after": "x" * 201}, {"after": service.encode_cursor("o\x00")}):
        r = client.get("/v1/balances", params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_payout_statement_pays_lots_first_in_first_out(runtime, clock):
    buyer = make_user(runtime, email="b@example.com")
    seller = make_user(runtime, email="s@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller, amounts=(10_001, 20_000, 3_333))
    _, ms = get_order(runtime, order_id)
    for m in ms:
        deliver(runtime, seller, order_id, m.id)
        approve(runtime, buyer, order_id, m.id)
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=8))
    from milepost.timers.worker import run_due

    run_due(runtime)
    ids = []
    for amount in (5_000, 10_000, 15_000):
        with runtime.unit_of_work() as ctx:
            ids.append(payouts.create_payout(ctx, actor=seller, amount=amount, currency="USD").id)
    with runtime.reading() as ctx:
        found = [statements.payout_statement(ctx.session, seller_id=seller.id, payout_id=i) for i in ids]
        with pytest.raises(NotFound):
            statements.payout_statement(ctx.session, seller_id=buyer.id, payout_id=ids[0])
        with pytest.raises(NotFound):
            statements.payout_statement(ctx.session, seller_id=seller.id, payout_id="po_nope")
    first, second, third = found
    assert [(p.seq, p.net_amount) for p in first.parts] == [(1, 5_000)]
    assert [(p.seq, p.net_amount) for p in second.parts] == [(1, 4_001), (2, 5_999)]
    assert [(p.seq, p.net_amount) for p in third.parts] == [(2, 12_001), (3, 2_999)]
    for s in found:
        assert sum(p.net_amount for p in s.parts) == s.amount
        assert all(p.gross_amount == p.net_amount + p.fee_amount for p in s.parts)
    # Lot #1 (fee 1000 on 10001) is split across two payouts; its fee parts add up exactly.
    assert first.parts[0].fee_amount + second.parts[0].fee_amount == 1_000
    assert second.parts[1].fee_amount + third.parts[0].fee_amount == 2_000
    assert first.as_dict()["rule"] == "fifo"
    assert_invariants(runtime)


def test_period_statements_tie_out(runtime, clock):
    h = build_history(runtime, clock)
    with runtime.reading() as ctx:
        whole = {s.currency: s for s in statements.period_statement(
            ctx.session, seller_id=h.seller.id, period=exports.Period())}
        balances = {b.currency: b for b in service.balances_for(ctx.session, h.seller.id)}
        first = statements.period_statement(ctx.session, seller_id=h.seller.id,
                                             period=exports.parse_period(None, "2026-01-09"))
        second = statements.period_statement(ctx.session, seller_id=h.seller.id,
                                              period=exports.parse_period("2026-01-10", None))
    for currency, s in whole.items():
        assert s.ties_out
        b = balances[currency]
        assert (s.closing.in_escrow, s.closing.clearing, s.closing.available) == (b.in_escrow, b.clearing, b.available)
        assert s.payouts == b.paid_out
        assert s.net_released == s.released - s.fees
    usd = whole["USD"]
    assert usd.refunds == 4_000 and usd.payouts == 8_000 and usd.cleared == 9_000
    assert all(s.ties_out for s in first + second)
    first_usd = next(s for s in first if s.currency == "USD")
    second_usd = next(s for s in second if s.currency == "USD")
    assert first_usd.closing == second_usd.opening
    assert second_usd.closing == usd.closing
    assert_invariants(runtime)
