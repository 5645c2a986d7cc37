"""`milepost audit` (SPEC §2.5): a deliberately corrupted ledger is caught and each violation named."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from milepost.ledger.audit import run_audit
from tests.factories import assert_invariants, make_order
from tests.orders.helpers import deliver_and_approve, milestone_ids, people


@pytest.fixture
def busy(runtime):
    """A healthy ledger: one order with an approved milestone and the rest in escrow."""
    p = people(runtime)
    order_id = make_order(runtime, buyer=p.buyer, seller=p.seller)
    deliver_and_approve(runtime, p, order_id, milestone_ids(runtime, order_id)[0])
    assert_invariants(runtime)
    return p, order_id


def audit(rt):
    with rt.reading() as ctx:
        report = run_audit(ctx.session)
    return {c.name: c.violations for c in report.checks if not c.ok}


def sql(rt, statement, **params):
    with rt.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def add_transfer(rt, *, kind, postings, order_id=None, milestone_id=None, key="corrupt"):
    with rt.db.engine.begin() as conn:
        tid = conn.execute(text(
            "INSERT INTO transfers (kind, currency, idempotency_key, order_id, milestone_id, memo, created_at) "
            "VALUES (:k, 'USD', :key, :o, :m, '', CURRENT_TIMESTAMP) RETURNING id"),
            {"k": kind, "key": key, "o": order_id, "m": milestone_id}).scalar_one()
        for account, amount in postings:
            conn.execute(text("INSERT INTO postings (transfer_id, account, currency, amount) "
                              "VALUES (:t, :a, 'USD', :n)"), {"t": tid, "a": account, "n": amount})


def test_healthy_ledger_passes_every_check(runtime, busy):
    assert audit(runtime) == {}


def test_audit_names_an_unbalanced_transfer(runtime, busy):
    add_transfer(runtime, kind="fee", postings=[("platform:fees", 5), ("world:payments", -4)])
    violations = audit(runtime)["transfers_balance"]
    assert any("sums to 1 USD" in v for v in violations)
    assert any("balances sum to 1" in v for v in violations)


def test_audit_names_a_single_posting_transfer(runtime, busy):
    add_transfer(runtime, kind="fee", postings=[("platform:fees", 0)])
    assert any("1 posting" in v for v in audit(runtime)["transfers_balance"])


def test_audit_names_negative_escrow(runtime, busy):
    _, order_id = busy
    add_transfer(runtime, kind="adjust", postings=[(f"escrow:order:{order_id}", -100_000),
                                                   ("world:refunds", 100_000)])
    found = audit(runtime)
    assert any(f"escrow:order:{order_id} is -" in v for v in found["no_negative_balances"])


def test_audit_names_negative_available_balance(runtime, busy):
    p, _ = busy
    add_transfer(runtime, kind="payout", postings=[(f"seller:{p.seller.id}:available", -1),
                                                   ("world:payouts", 1)])
    assert any(":available is -1" in v for v in audit(runtime)["no_negative_balances"])


def test_audit_names_money_released_twice_from_a_milestone(runtime, busy):
    p, order_id = busy
    mid = milestone_ids(runtime, order_id)[0]
    add_transfer(runtime, kind="release", order_id=order_id, milestone_id=mid,
                 postings=[(f"escrow:order:{order_id}", -10_000), (f"seller:{p.seller.id}:clearing", 10_000)])
    found = audit(runtime)
    assert "milestone_money" in found or "state_matches_money" in found
    assert "cached_balances" in found  # the milestone's cached released amount disagrees


def test_audit_names_a_completed_order_still_holding_escrow(runtime, busy):
    _, order_id = busy
    sql(runtime, "UPDATE orders SET status = 'completed' WHERE id = :o", o=order_id)
    assert any(order_id in v for v in audit(runtime)["ended_orders_empty"])


def test_audit_names_a_state_change_without_its_transfer(runtime, busy):
    _, order_id = busy
    mid = milestone_ids(runtime, order_id)[1]
    sql(runtime, "UPDATE milestones SET status = 'approved' WHERE id = :m", m=mid)
    assert any(mid in v for v in audit(runtime)["state_matches_money"])


def test_audit_names_a_cached_figure_that_disagrees(runtime, busy):
    _, order_id = busy
    mid = milestone_ids(runtime, order_id)[2]
    sql(runtime, "UPDATE milestones SET refunded_amount = 7 WHERE id = :m", m=mid)
    assert any(mid in v for v in audit(runtime)["cached_balances"])


def test_audit_names_a_clearing_lot_that_disagrees_with_the_balance(runtime, busy):
    sql(runtime, "UPDATE clearing_lots SET amount = amount + 1")
    assert any("open lots" in v for v in audit(runtime)["cached_balances"])


def test_cli_audit_exits_1_on_a_corrupt_ledger_and_0_on_a_healthy_one(runtime, busy, monkeypatch):
    from milepost import cli

    monkeypatch.setattr(cli, "_runtime", lambda *a, **k: runtime)
    runner = CliRunner()
    ok = runner.invoke(cli.app, ["audit"])
    assert ok.exit_code == 0, ok.output
    add_transfer(runtime, kind="fee", postings=[("platform:fees", 5), ("world:payments", -4)])
    bad = runner.invoke(cli.app, ["audit"])
    assert bad.exit_code == 1
    assert "transfers_balance" in bad.output
    as_json = runner.invoke(cli.app, ["audit", "--json"])
    assert as_json.exit_code == 1 and '"ok": false' in as_json.output


def test_audit_names_a_corrupted_forecast_schedule_row(runtime, busy):
    _, order_id = busy
    last = milestone_ids(runtime, order_id)[-1]
    sql(runtime, "UPDATE forecast_schedule SET base_us = base_us + 1 WHERE milestone_id = :m", m=last)
    violations = audit(runtime)["forecast_schedule"]
    assert len(violations) == 1 and last in violations[0]


def test_audit_names_missing_and_extra_forecast_schedule_rows(runtime, busy):
    _, order_id = busy
    last = milestone_ids(runtime, order_id)[-1]
    sql(runtime, "DELETE FROM forecast_schedule WHERE milestone_id = :m", m=last)
    sql(runtime, "INSERT INTO forecast_schedule (milestone_id, order_id, seller_id, currency, seq, rank, gross, fee, "
                 "base_us, lag_us, slides_from_us, funded) VALUES ('ms_ghost', 'ord_ghost', 'usr_x', 'USD', 1, 5, 1, 0, 0, 0, 0, TRUE)")
    violations = audit(runtime)["forecast_schedule"]
    assert len(violations) == 2
    assert any(last in v and "row None" in v for v in violations)
    assert any("ms_ghost" in v and "recomputed None" in v for v in violations)


def test_audit_names_a_schedule_left_stale_by_a_write_around_the_orm(runtime, busy):
    # A raw change of the terms is not seen by the listeners that keep the schedule: the audit's
    # recomputation notices.
    _, order_id = busy
    sql(runtime, "UPDATE orders SET review_days = review_days + 1 WHERE id = :o", o=order_id)
    assert audit(runtime)["forecast_schedule"]


def test_audit_names_a_wrong_missing_or_extra_escrow_row(runtime, busy):
    _, order_id = busy
    sql(runtime, "UPDATE order_escrow SET amount = amount + 1 WHERE order_id = :o", o=order_id)
    assert [v for v in audit(runtime)["order_escrow"] if order_id in v]
    sql(runtime, "DELETE FROM order_escrow WHERE order_id = :o", o=order_id)
    sql(runtime, "INSERT INTO order_escrow (order_id, seller_id, buyer_id, currency, amount) "
                 "VALUES ('ord_ghost', 'usr_s', 'usr_b', 'USD', 5)")
    violations = audit(runtime)["order_escrow"]
    assert len(violations) == 2
    assert any(order_id in v and "None, recomputed" in v for v in violations)
    assert any("ord_ghost" in v and "recomputed None" in v for v in violations)
