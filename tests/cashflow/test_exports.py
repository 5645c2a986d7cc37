"""Exports tie out: they pass bean-check and `hledger check --strict` and reproduce the balances."""

from __future__ import annotations

from milepost.cashflow import exports, service
from milepost.cashflow.exports import ExportFormat, beancount_account
from tests.cashflow.history import build_history
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
from tests.factories import assert_invariants


def _orders(rt, user_id):
    with rt.reading() as ctx:
        from sqlalchemy import select

        from milepost.orders.models import Order

        sold = set(ctx.session.scalars(select(Order.id).where(Order.seller_id == user_id)))
        bought = set(ctx.session.scalars(select(Order.id).where(Order.buyer_id == user_id)))
    return sold, bought


def _api(rt, user_id):
    with rt.reading() as ctx:
        return api_view(service.balances_for(ctx.session, user_id))


def test_full_ledger_exports_pass_the_tools_and_agree_line_for_line(runtime, clock, tmp_path):
    build_history(runtime, clock)
    journal = write_export(runtime, ExportFormat.HLEDGER, tmp_path / "all.journal")
    bean = write_export(runtime, ExportFormat.BEANCOUNT, tmp_path / "all.beancount")
    table = write_export(runtime, ExportFormat.CSV, tmp_path / "all.csv")
    hledger_check(journal)
    bean_check(bean)
    from_csv = csv_balances(table)
    assert hledger_balances(journal) == from_csv
    assert beancount_balances(bean) == {(beancount_account(a), c): v for (a, c), v in from_csv.items()}
    with runtime.reading() as ctx:
        from sqlalchemy import func, select

        from milepost.ledger.models import Posting

        ledger = {
            (a, c): int(t)
            for a, c, t in ctx.session.execute(
                select(Posting.account, Posting.currency, func.sum(Posting.amount))
                .group_by(Posting.account, Posting.currency)
            )
            if t
        }
        postings = ctx.session.scalar(select(func.count(Posting.id)))
    assert from_csv == ledger
    assert sum(1 for _ in table.open()) - 1 == postings  # one CSV row per posting
    assert_invariants(runtime)


def test_user_exports_reproduce_the_api_balances_to_the_minor_unit(runtime, clock, tmp_path):
    h = build_history(runtime, clock)
    for user in (h.seller, h.buyer, h.other_buyer):
        sold, bought = _orders(runtime, user.id)
        expected = _api(runtime, user.id)
        journal = write_export(runtime, ExportFormat.HLEDGER, tmp_path / f"{user.id}.journal", user_id=user.id)
        hledger_check(journal)
        assert party_view(hledger_balances(journal), user_id=user.id, seller_orders=sold,
                          buyer_orders=bought) == expected
        bean = write_export(runtime, ExportFormat.BEANCOUNT, tmp_path / f"{user.id}.beancount", user_id=user.id)
        bean_check(bean)
        accounts = {f"escrow:order:{o}" for o in sold | bought} | {
            f"seller:{user.id}:clearing", f"seller:{user.id}:available",
            "world:payouts", "world:refunds", "world:payments",
        }
        names = {a: beancount_account(a) for a in accounts}
        assert party_view(beancount_balances(bean), user_id=user.id, seller_orders=sold, buyer_orders=bought,
                          names=names) == expected
        table = write_export(runtime, ExportFormat.CSV, tmp_path / f"{user.id}.csv", user_id=user.id)
        assert party_view(csv_balances(table), user_id=user.id, seller_orders=sold, buyer_orders=bought) == expected
    assert _api(runtime, h.seller.id)["USD"]["paid_out"] == 8_000
    assert_invariants(runtime)


def test_period_export_opens_with_balances_and_closes_at_the_ledger_balance(runtime, clock, tmp_path):
    h = build_history(runtime, clock)
    sold, bought = _orders(runtime, h.seller.id)
    # The history spans 2026-01-05 .. 2026-01-14; cut in the middle, and before/after everything.
    for start, end in (("2026-01-10", None), ("2026-01-06", "2026-01-13"), ("2025-12-01", "2027-01-01"),
                       ("2026-01-14", "2026-01-14")):
        period = exports.parse_period(start, end)
        journal = write_export(runtime, ExportFormat.HLEDGER, tmp_path / "p.journal", user_id=h.seller.id,
                               period=period)
        hledger_check(journal)
        bean = write_export(runtime, ExportFormat.BEANCOUNT, tmp_path / "p.beancount", user_id=h.seller.id,
                            period=period)
        bean_check(bean)
        table = write_export(runtime, ExportFormat.CSV, tmp_path / "p.csv", user_id=h.seller.id, period=period)
        # Balances through the end of the period, from the whole history up to that date:
        upto = write_export(runtime, ExportFormat.CSV, tmp_path / "upto.csv", user_id=h.seller.id,
                            period=exports.Period(None, period.end))
        expected = csv_balances(upto)
        assert csv_balances(table) == expected
        assert hledger_balances(journal) == expected
        assert beancount_balances(bean) == {(beancount_account(a), c): v for (a, c), v in expected.items()}
        if end is None:
            assert party_view(expected, user_id=h.seller.id, seller_orders=sold, buyer_orders=bought) == _api(
                runtime, h.seller.id)
    assert_invariants(runtime)


def test_empty_ledger_exports_are_valid(runtime, tmp_path):
    journal = write_export(runtime, ExportFormat.HLEDGER, tmp_path / "e.journal")
    hledger_check(journal)
    bean = write_export(runtime, ExportFormat.BEANCOUNT, tmp_path / "e.beancount")
    bean_check(bean)
    assert csv_balances(write_export(runtime, ExportFormat.CSV, tmp_path / "e.csv")) == {}


def test_beancount_account_names_are_valid_and_distinct():
    names = ["escrow:order:ord_01ABC", "seller:usr_01XYZ:clearing", "seller:usr_01XYZ:available",
             "platform:fees", "world:payments", "world:refunds", "world:payouts"]
    mapped = [beancount_account(n) for n in names]
    assert mapped[0] == "Assets:Escrow:Order:Ord-01ABC"
    assert mapped[4] == "Equity:World:Payments"
    assert len(set(mapped)) == len(mapped)
