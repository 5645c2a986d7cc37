"""Run the real accounting tools on exports and read balances back in minor units."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from milepost.cashflow import exports
from milepost.money import major_unit
from milepost.runtime import Runtime

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HLEDGER = shutil.which("hledger")

Balances = dict[tuple[str, str], int]


def need_hledger() -> str:
    """hledger's path; skips with a clear message only outside CI (under CI=true it must be there)."""
    if HLEDGER is None:
        if IN_CI:
            pytest.fail("hledger is required under CI=true (apt-get install -y hledger)")
        pytest.skip("hledger not installed: apt-get install -y hledger (required under CI=true)")
    return HLEDGER


def write_export(rt: Runtime, fmt: exports.ExportFormat, path: Path, *, user_id: str | None = None,
                 period: exports.Period = exports.Period()) -> Path:
    with rt.reading() as ctx, path.open("w", encoding="utf-8") as out:
        for chunk in exports.export(ctx.session, fmt, user_id=user_id, period=period):
            out.write(chunk)
    return path


def _minor(amount: Decimal, currency: str) -> int:
    value = amount * major_unit(currency)
    assert value == value.to_integral_value(), f"{amount} {currency} is not a whole number of minor units"
    return int(value)


def hledger_check(path: Path) -> None:
    result = subprocess.run([need_hledger(), "-f", str(path), "check", "--strict"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def hledger_balances(path: Path) -> Balances:
    """{(account, currency): minor units} from `hledger balance -O csv` (bare layout: one row per commodity)."""
    result = subprocess.run(
        [need_hledger(), "-f", str(path), "balance", "-O", "csv", "--layout=bare", "--empty"],
        capture_output=True, text=True, check=True,
    )
    balances: Balances = {}
    for row in csv.DictReader(io.StringIO(result.stdout)):
        if row["account"] == "total" or not row["commodity"]:
            continue
        amount = _minor(Decimal(row["balance"].replace(",", "")), row["commodity"])
        if amount:
            balances[(row["account"], row["commodity"])] = amount
    return balances


def bean_check(path: Path) -> None:
    bean_check_bin = Path(sys.executable).parent / "bean-check"  # the venv's, installed with beancount
    exe = str(bean_check_bin) if bean_check_bin.exists() else shutil.which("bean-check") or "bean-check"
    result = subprocess.run([exe, str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def beancount_balances(path: Path) -> Balances:
    """Balances from beancount's own loader and realization, keyed by beancount account names."""
    from beancount import loader
    from beancount.core import realization

    entries, errors, _ = loader.load_file(str(path))
    assert not errors, errors
    root = realization.realize(entries)
    balances: Balances = {}
    for real in realization.iter_children(root):
        for position in real.balance:
            amount = _minor(position.units.number, position.units.currency)
            if amount:
                balances[(real.account, position.units.currency)] = amount
    return balances


def csv_balances(path: Path) -> Balances:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            totals[(row["account"], row["currency"])] += int(row["amount_minor"])
    return {k: v for k, v in totals.items() if v}


def party_view(balances: Balances, *, user_id: str, seller_orders: set[str], buyer_orders: set[str],
               names: dict[str, str] | None = None) -> dict[str, dict[str, int]]:
    """Re-derive the `/v1/balances` fields from an export's account balances.

    `names` maps ledger account names to the export's (identity for hledger and CSV).
    """
    def name(account: str) -> str:
        return names.get(account, account) if names else account

    view: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    escrow_of = {name(f"escrow:order:{o}"): o for o in seller_orders | buyer_orders}
    for (account, currency), amount in balances.items():
        v = view[currency]
        if account in escrow_of:
            order = escrow_of[account]
            if order in seller_orders:
                v["in_escrow"] += amount
            if order in buyer_orders:
                v["committed"] += amount
        elif account == name(f"seller:{user_id}:clearing"):
            v["clearing"] += amount
        elif account == name(f"seller:{user_id}:available"):
            v["available"] += amount
        elif account == name("world:payouts"):
            v["paid_out"] += amount
        elif account == name("world:refunds") and not seller_orders:
            # The world accounts of a mixed export hold both sides; buyer fields need a pure buyer.
            v["refunded"] += amount
        elif account == name("world:payments") and not seller_orders:
            v["paid"] -= amount
    for v in view.values():
        v["spent"] = v.pop("paid", 0) - v["committed"] - v["refunded"]
    result = {c: {k: x for k, x in v.items() if x} for c, v in view.items()}
    return {c: v for c, v in result.items() if v}


def api_view(balances: list) -> dict[str, dict[str, int]]:
    fields = ("in_escrow", "clearing", "available", "paid_out", "committed", "refunded", "spent")
    result = {b.currency: {f: getattr(b, f) for f in fields if getattr(b, f)} for b in balances}
    return {c: v for c, v in result.items() if v}
