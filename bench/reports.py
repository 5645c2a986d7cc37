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
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

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


def _without_account_directives(path: Path) -> Path:
    """The journal minus its `account` declarations (hledger 1.25 is superlinear in them).

    The export declares every account so that `hledger check --strict` passes; declarations do not
    change a balance. On this hledger the time grows much faster than the number of declared
    accounts (user CPU 0.9 / 3.7 / 10 / 74 s for 3k / 6k / 12k / 25k orders; 3.5 / 7.5 s for 12k /
    25k orders without them), so the file as exported would take hours at 250k accounts. hledger
    is timed on this copy: the comparison can only get harder for us, never easier."""
    out = path.with_name(path.stem + ".undeclared" + path.suffix)
    with path.open() as src, out.open("w") as dst:
        for line in src:
            if not line.startswith("account "):
                dst.write(line)
    return out


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


BALANCES = select(Posting.account, Posting.currency, func.sum(Posting.amount)).group_by(
    Posting.account, Posting.currency
)


def _our_balances(rt: Any) -> tuple[dict[tuple[str, str], int], float]:
    """Every account's balance, answered the way a running server answers a request: one read unit
    of work from the pool (checkout + pre-ping, BEGIN, the aggregate, ROLLBACK on return) and the
    rows turned into the same {(account, currency): minor units} the other two are compared in."""
    start = time.perf_counter()
    with rt.reading() as ctx:
        rows = ctx.session.execute(BALANCES).all()
    balances = {(a, c): int(t) for a, c, t in rows if int(t) != 0}
    return balances, time.perf_counter() - start


def _server_side(rt: Any) -> tuple[float, str]:
    """PostgreSQL's own execution time of the aggregate (EXPLAIN ANALYZE, TIMING OFF) and its plan's
    top node, e.g. "HashAggregate (21 batches)" — what our figure is made of, for the log."""
    sql = str(BALANCES.compile(rt.db.engine))  # no bound parameters
    with rt.reading() as ctx:
        plan = ctx.session.execute(
            text(f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {sql}")
        ).scalar_one()
    top = plan[0]["Plan"]
    node = top["Node Type"] + (f" {top['Strategy']}" if top.get("Strategy") else "")
    nodes = [top]
    spilled = []
    while nodes:
        n = nodes.pop()
        if n.get("HashAgg Batches", 1) > 1:
            spilled.append(f"{n['Node Type']} spilled to disk in {n['HashAgg Batches']} batches")
        nodes.extend(n.get("Plans", []))
    return float(plan[0]["Execution Time"]) / 1000, "; ".join([node, *spilled])


def journals(ws: Workspace, sizes: Any) -> dict[str, float]:
    """hledger and beancount computing every balance from the exported file vs our aggregate.

    Timed on each side (wall clock, this process):
    - hledger: the whole `hledger -f FILE balance --flat -O csv --no-total` process (parse the
      journal, compute, print CSV); parsing its CSV here is not timed. FILE is the export without
      its `account` declarations (see `_without_account_directives`: in hledger's favour).
    - beancount: a whole `python` child process — start, import beancount, `loader.load_file`
      (parse, book, validate), `realization.realize`, print the balances as JSON.
    - ours: `_our_balances` on a warm pool, i.e. what a running server does per request; PostgreSQL
      has the ledger already (that is the point of the comparison). 3 runs before hledger, 3
      between hledger and beancount, 3 after beancount — the median of the 9 — so our figure
      samples the shared machine over the same minutes theirs did. The first (cold) call of a fresh
      pool — connect, catalog caches — is reported apart as ours_balances_cold_ms.
    The three results are asserted identical before any figure is returned.
    """
    from milepost.cashflow.exports import beancount_account

    n_orders = sizes.journal_postings // 4
    url, _tpl = dataset_for_reports(ws, n_orders, pairs=ds.USER_PAIRS, stem="journal")
    rt = ws.runtime(url)
    results: dict[str, float] = {}
    try:
        with rt.reading() as ctx:
            n_postings = ctx.session.scalar(select(func.count()).select_from(Posting))
        results["reports.journal_postings"] = n_postings
        ours, cold_s = _our_balances(rt)  # a fresh pool: connect + first query
        ours_s: list[float] = []

        def ours_round(k: int = 3) -> None:
            for _ in range(k):
                balances, seconds = _our_balances(rt)
                if balances != ours:
                    raise AssertionError("the ledger's balances changed between runs")
                ours_s.append(seconds)

        ours_round()
        server_s, plan = _server_side(rt)
        log(
            f"ours: {len(ours):,} balances, PostgreSQL executes the aggregate in "
            f"{1000 * server_s:.0f} ms ({plan})"
        )
        hl_path, bc_path = ws.root / "ledger.journal", ws.root / "ledger.beancount"
        hl_export = _export(url, "hledger", hl_path)
        bc_export = _export(url, "beancount", bc_path)
        log(
            f"exports of {n_postings:,} postings: hledger {hl_export['seconds']:.1f} s "
            f"(peak {hl_export['peak_mb']:.0f} MiB, {hl_path.stat().st_size / 2**20:.0f} MiB file), "
            f"beancount {bc_export['seconds']:.1f} s (peak {bc_export['peak_mb']:.0f} MiB, "
            f"{bc_path.stat().st_size / 2**20:.0f} MiB file)"
        )
        results["memory.export_1m_peak_mb"] = round(
            max(hl_export["peak_mb"], bc_export["peak_mb"]), 1
        )
        results["memory.export_postings"] = n_postings
        results["reports.export_hledger_s"] = round(hl_export["seconds"], 2)
        results["reports.export_beancount_s"] = round(bc_export["seconds"], 2)

        # hledger and beancount take hundreds of times longer than we do: one run each (minutes
        # at full size) bounds the suite; our side is sampled around them.
        hl_undeclared = _without_account_directives(hl_path)
        hl, hl_s = _hledger_balances(hl_undeclared)
        hl_undeclared.unlink()
        if hl != ours:
            raise AssertionError("hledger's balances differ from the ledger's")
        ours_round()
        bc, bc_s = _beancount_balances(bc_path)
        expected_bc = {(beancount_account(a), c): v for (a, c), v in ours.items()}
        if bc != expected_bc:
            raise AssertionError("beancount's balances differ from the ledger's")
        ours_round()
        ours_med = median(ours_s)
        log(
            f"balances of {len(ours):,} accounts from {n_postings:,} postings — identical: ours "
            f"{1000 * ours_med:.0f} ms (median of {len(ours_s)}: "
            f"{', '.join(f'{1000 * x:.0f}' for x in ours_s)}; cold {1000 * cold_s:.0f} ms), "
            f"hledger {hl_s:.1f} s, beancount {bc_s:.1f} s; load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        results.update(
            {
                "reports.ours_balances_ms": round(1000 * ours_med, 2),
                "reports.ours_balances_cold_ms": round(1000 * cold_s, 2),
                "reports.ours_balances_server_ms": round(1000 * server_s, 2),
                "reports.hledger_balances_s": round(hl_s, 3),
                "reports.beancount_balances_s": round(bc_s, 3),
                "reports.vs_hledger_ratio": round(hl_s / ours_med, 1),
                "reports.vs_beancount_ratio": round(bc_s / ours_med, 1),
                "reports.balances_identical": 1,
            }
        )
        hl_path.unlink(missing_ok=True)
        bc_path.unlink(missing_ok=True)
    finally:
        rt.db.dispose()
    ws.drop(url)
    return results
