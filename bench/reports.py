"""Reports: ledger balances against hledger and beancount (the forecast is in bench/forecast.py).

vs_hledger / vs_beancount: the whole ledger (each clone books two fund transfers = 4 postings) is
exported to a journal by `cashflow.exports` (in a child process, so its peak RSS is the export's
own: memory.export_1m_peak_mb). Then hledger (`balance -O csv`) and beancount (`loader.load_file` +
`realization`) compute every account's balance from the file, and we compute them with one SQL
`SUM … GROUP BY`. The three sets of balances are asserted identical before any ratio is reported.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import dataset as ds
from bench.common import Workspace, log, median
from milepost.ledger.models import Posting


def dataset_for_reports(
    ws: Workspace, orders: int, *, pairs: int, stem: str
) -> tuple[str, ds.Template]:
    url = ws.new_database("postgresql", stem)
    rt = ws.runtime(url)
    try:
        tpl = ds.make_template(rt)
        ds.clone_users(rt.db.engine, tpl)
        started = time.perf_counter()
        ds.clone_orders(rt.db.engine, tpl, start=1, count=orders, pairs=pairs)
        log(f"reports: {orders:,} orders bulk-loaded in {time.perf_counter() - started:.1f} s")
    finally:
        rt.db.dispose()
    return url, tpl


# ---------------------------------------------------------------------------------------------
# Journals
# ---------------------------------------------------------------------------------------------

EXPORT_CHILD = """
import json, sys, time
from milepost.db import Database
from milepost.cashflow import exports
url, fmt, path = sys.argv[1:4]
db = Database(url)
start = time.perf_counter()
with db.reading() as session, open(path, "w") as out:
    for chunk in exports.export(session, exports.parse_format(fmt)):
        out.write(chunk)
seconds = time.perf_counter() - start
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak}))
"""

BEANCOUNT_CHILD = """
import json, sys
from beancount import loader
from beancount.core import realization
entries, errors, options = loader.load_file(sys.argv[1])
if errors:
    print(json.dumps({"errors": [str(e.message) for e in errors[:5]]})); sys.exit(1)
real = realization.realize(entries)
out = {}
for acc in realization.iter_children(real):
    for pos in acc.balance:
        out[acc.account + "|" + pos.units.currency] = str(pos.units.number)
print(json.dumps(out))
"""


def _export(url: str, fmt: str, path: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", EXPORT_CHILD, url, fmt, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"export {fmt} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _minor(value: Decimal, digits: int = 2) -> int:
    return int(value.scaleb(digits))


def _hledger_balances(path: Path) -> tuple[dict[tuple[str, str], int], float]:
    start = time.perf_counter()
    proc = subprocess.run(
        ["hledger", "-f", str(path), "balance", "--flat", "-O", "csv", "--no-total"],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"hledger failed: {proc.stderr[-2000:]}")
    result: dict[tuple[str, str], int] = {}
    rows = csv.reader(io.StringIO(proc.stdout))
    next(rows)  # header
    for account, balance in rows:
        for part in balance.split(","):  # several commodities: "1.00 USD, 2 JPY"
            part = part.strip()
            if not part or part == "0":
                continue
            number, currency = part.rsplit(" ", 1)
            result[(account, currency)] = _minor(Decimal(number))
    return result, seconds


def _beancount_balances(path: Path) -> tuple[dict[tuple[str, str], int], float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", BEANCOUNT_CHILD, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"beancount failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    result = {}
    for key, number in json.loads(proc.stdout).items():
        account, currency = key.split("|")
        amount = _minor(Decimal(number))
        if amount:
            result[(account, currency)] = amount
    return result, seconds


def _our_balances(rt: Any) -> tuple[dict[tuple[str, str], int], float]:
    start = time.perf_counter()
    with rt.reading() as ctx:
        rows = ctx.session.execute(
            select(Posting.account, Posting.currency, func.sum(Posting.amount)).group_by(
                Posting.account, Posting.currency
            )
        ).all()
    seconds = time.perf_counter() - start
    return {(a, c): int(t) for a, c, t in rows if int(t) != 0}, seconds


def journals(ws: Workspace, sizes: Any) -> dict[str, float]:
    from milepost.cashflow.exports import beancount_account

    n_orders = sizes.journal_postings // 4
    url, _tpl = dataset_for_reports(ws, n_orders, pairs=ds.USER_PAIRS, stem="journal")
    rt = ws.runtime(url)
    results: dict[str, float] = {}
    try:
        with rt.reading() as ctx:
            n_postings = ctx.session.scalar(select(func.count()).select_from(Posting))
        results["reports.journal_postings"] = n_postings
        ours_runs = [_our_balances(rt) for _ in range(max(3, sizes.repeats))]
        ours = ours_runs[0][0]
        ours_s = median([s for _, s in ours_runs])
        hl_path, bc_path = ws.root / "ledger.journal", ws.root / "ledger.beancount"
        hl_export = _export(url, "hledger", hl_path)
        bc_export = _export(url, "beancount", bc_path)
        log(
            f"exports of {n_postings:,} postings: hledger {hl_export['seconds']:.1f} s "
            f"(peak {hl_export['peak_mb']:.0f} MiB), beancount {bc_export['seconds']:.1f} s "
            f"(peak {bc_export['peak_mb']:.0f} MiB)"
        )
        results["memory.export_1m_peak_mb"] = round(
            max(hl_export["peak_mb"], bc_export["peak_mb"]), 1
        )
        results["memory.export_postings"] = n_postings
        results["reports.export_hledger_s"] = round(hl_export["seconds"], 2)
        results["reports.export_beancount_s"] = round(bc_export["seconds"], 2)

        # hledger and beancount take hundreds of times longer than we do: one run each is enough
        # for a ratio whose target is 100×, and keeps the suite bounded.
        repeats = 1
        hl_runs = [_hledger_balances(hl_path) for _ in range(repeats)]
        if hl_runs[0][0] != ours:
            raise AssertionError("hledger's balances differ from the ledger's")
        bc_runs = [_beancount_balances(bc_path) for _ in range(repeats)]
        expected_bc = {(beancount_account(a), c): v for (a, c), v in ours.items()}
        if bc_runs[0][0] != expected_bc:
            raise AssertionError("beancount's balances differ from the ledger's")
        hl_s = median([s for _, s in hl_runs])
        bc_s = median([s for _, s in bc_runs])
        log(
            f"balances of {len(ours):,} accounts: ours {1000 * ours_s:.0f} ms, hledger {hl_s:.1f} s, "
            f"beancount {bc_s:.1f} s — identical"
        )
        results.update(
            {
                "reports.ours_balances_ms": round(1000 * ours_s, 2),
                "reports.hledger_balances_s": round(hl_s, 3),
                "reports.beancount_balances_s": round(bc_s, 3),
                "reports.vs_hledger_ratio": round(hl_s / ours_s, 1),
                "reports.vs_beancount_ratio": round(bc_s / ours_s, 1),
                "reports.balances_identical": 1,
            }
        )
        hl_path.unlink(missing_ok=True)
        bc_path.unlink(missing_ok=True)
    finally:
        rt.db.dispose()
    ws.drop(url)
    return results
