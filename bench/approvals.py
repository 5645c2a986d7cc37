"""Milestone approvals per second through the service layer, next to a raw-driver replay.

One approval = one `unit_of_work()` calling `orders.approve` on a delivered milestone of an upfront,
per-milestone-release order: lock the order, re-read its milestones, state change, release transfer
(+ postings, fee), clearing lot, clearance timer, the next milestone started (+ its late timer), and
the events of all of it — exactly what the HTTP endpoint does after authentication.

The raw floor: while our approvals run, SQLAlchemy's `before_cursor_execute` event records every
statement and its final DBAPI parameters, and the engine's begin/commit/rollback events record the
transaction boundaries. The log is then replayed through the bare driver (sqlite3 / psycopg) on an
identical fresh copy of the starting database: same statements, same parameters, same transactions,
results fetched — no Python domain logic. ours ÷ raw is the share of the database's own speed we
keep. The capture hook stays on during our timed run, so its (small) cost counts against us.
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from typing import Any

from sqlalchemy import event

from bench import dataset as ds
from bench.common import (
    QUICK,
    Workspace,
    log,
    make_runtime,
    median,
    raw_pg_conninfo,
    raw_sqlite_path,
)
from milepost.orders import service as orders

Statement = tuple[str, str, Any, bool]  # (kind, sql, parameters, executemany)


class Capture:
    """Records what an engine sends to its driver, with transaction boundaries."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.log: list[Statement] = []
        self.transactions = 0

    def __enter__(self) -> Capture:
        event.listen(self.engine, "before_cursor_execute", self._sql)
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "rollback", self._rollback)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._sql)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)

    def _sql(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        self.log.append(("sql", statement, parameters, executemany))

    def _commit(self, conn: Any) -> None:
        self.transactions += 1
        self.log.append(("commit", "", None, False))

    def _rollback(self, conn: Any) -> None:
        self.log.append(("rollback", "", None, False))

    @property
    def statements(self) -> int:
        return sum(1 for s in self.log if s[0] == "sql")


def replay(dialect: str, url: str, log_: list[Statement]) -> float:
    """Seconds the bare driver takes to run the captured log on the database at `url`."""
    if dialect == "sqlite":
        conn = sqlite3.connect(raw_sqlite_path(url), isolation_level=None, timeout=30)
        # The same connection setup as milepost.db.make_engine.
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            conn.execute(f"PRAGMA {pragma}")
        start = time.perf_counter()
        cur = conn.cursor()
        for kind, sql, params, many in log_:
            if kind == "sql":
                if many and isinstance(params, list):
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
                if cur.description is not None:
                    cur.fetchall()
            elif kind == "commit":
                conn.commit()
            else:
                conn.rollback()
        elapsed = time.perf_counter() - start
        conn.close()
        return elapsed
    import psycopg

    pconn = psycopg.connect(raw_pg_conninfo(url))
    pconn.execute("SELECT 1")
    pconn.commit()
    start = time.perf_counter()
    pcur = pconn.cursor()
    for kind, sql, params, many in log_:
        if kind == "sql":
            if many and isinstance(params, list):
                pcur.executemany(sql, params)
            else:
                pcur.execute(sql, params)
            if pcur.description is not None:
                pcur.fetchall()
        elif kind == "commit":
            pconn.commit()
        else:
            pconn.rollback()
    elapsed = time.perf_counter() - start
    pconn.close()
    return elapsed


def build_base(
    ws: Workspace, dialect: str, *, targets: int, filler: int, stem: str = "base"
) -> tuple[str, ds.Template]:
    """A migrated database: template order, users, `targets` orders to approve, then `filler` more."""
    url = ws.new_database(dialect, stem)
    rt = ws.runtime(url)
    try:
        tpl = ds.make_template(rt)
        ds.clone_users(rt.db.engine, tpl)
        started = time.perf_counter()
        ds.clone_orders(rt.db.engine, tpl, start=1, count=targets + filler)
        log(
            f"{dialect}: {targets + filler:,} orders bulk-loaded in {time.perf_counter() - started:.1f} s"
        )
    finally:
        rt.db.dispose()
    return url, tpl


def _work(rt: Any, tpl: ds.Template, indices: range) -> list[tuple[Any, str, str]]:
    users = ds.load_users(rt, tpl)
    return [
        (users[ds.buyer_id(tpl, i)], ds.order_id(tpl, i), ds.milestone_id(tpl, i, 1))
        for i in indices
    ]


def approve_all(rt: Any, work: list[tuple[Any, str, str]]) -> float:
    start = time.perf_counter()
    for buyer, oid, mid in work:
        with rt.unit_of_work() as ctx:
            orders.approve(ctx, actor=buyer, order_id=oid, milestone_id=mid)
    return time.perf_counter() - start


def single(
    ws: Workspace, dialect: str, base_url: str, tpl: ds.Template, n: int
) -> dict[str, float]:
    """One repeat: n approvals on a fresh copy (captured), then the raw replay on another copy."""
    ours_url = ws.new_database(dialect, "ours", template=base_url)
    raw_url = ws.new_database(dialect, "raw", template=base_url)
    rt = ws.runtime(ours_url)
    try:
        work = _work(rt, tpl, range(1, n + 1))
        with Capture(rt.db.engine) as cap:
            ours = approve_all(rt, work)
    finally:
        rt.db.dispose()
    raw = replay(dialect, raw_url, cap.log)
    ws.drop(ours_url)
    ws.drop(raw_url)
    return {
        "per_s": n / ours,
        "raw_per_s": n / raw,
        "ratio_vs_raw": raw / ours,
        "statements_per_approval": cap.statements / n,
        "ms_per_approval": 1000 * ours / n,
    }


def _worker(
    url: str, data_dir: str, tpl_json: dict[str, Any], lo: int, hi: int, barrier: Any, out: Any
) -> None:
    from pathlib import Path

    tpl = ds.template_from_json(tpl_json)
    rt = make_runtime(url, data_dir=Path(data_dir), pool_size=2)
    work = _work(rt, tpl, range(lo, hi))
    barrier.wait()
    start = time.monotonic()
    approve_all(rt, work)
    out.put((start, time.monotonic(), hi - lo))
    rt.db.dispose()


def concurrent(ws: Workspace, base_url: str, tpl: ds.Template, n: int, workers: int) -> float:
    """Approvals per second with `workers` processes approving disjoint orders at once."""
    url = ws.new_database("postgresql", "workers", template=base_url)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    out = ctx.Queue()
    per = n // workers
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                url,
                str(ws.root / "data"),
                tpl.as_json(),
                1 + w * per,
                1 + (w + 1) * per,
                barrier,
                out,
            ),
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    results = []
    deadline = time.monotonic() + 900
    while len(results) < workers:
        try:
            results.append(out.get(timeout=1))
        except Exception:
            if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    if p.is_alive():
                        p.terminate()
                raise RuntimeError("an approval worker process failed") from None
    for p in procs:
        p.join(timeout=60)
    ws.drop(url)
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    return sum(r[2] for r in results) / (end - start)


def run(ws: Workspace, sizes: Any) -> dict[str, float]:
    results: dict[str, float] = {}
    n = sizes.approvals
    for dialect, key in (("sqlite", "sqlite"), ("postgresql", "postgres")):
        base_url, tpl = build_base(ws, dialect, targets=n, filler=sizes.filler_small)
        runs = []
        for r in range(sizes.repeats):
            one = single(ws, dialect, base_url, tpl, n)
            log(
                f"approvals {key} repeat {r + 1}: {one['per_s']:.0f}/s, raw {one['raw_per_s']:.0f}/s, "
                f"ratio {one['ratio_vs_raw']:.2f}, {one['statements_per_approval']:.1f} statements each"
            )
            runs.append(one)
        for field in (
            "per_s",
            "raw_per_s",
            "ratio_vs_raw",
            "statements_per_approval",
            "ms_per_approval",
        ):
            results[f"approvals.{key}.{field}"] = round(median([x[field] for x in runs]), 3)
        if dialect == "postgresql":
            for workers in (1, 4, 8):
                # One run each in QUICK mode: three processes × three counts × repeats is the slow part.
                rates = [
                    concurrent(ws, base_url, tpl, n, workers)
                    for _ in range(1 if QUICK else sizes.repeats)
                ]
                results[f"approvals.postgres.workers_{workers}.per_s"] = round(median(rates), 1)
                log(f"approvals postgres, {workers} workers: {median(rates):.0f}/s")
        ws.drop(base_url)
    return results


def scale(ws: Workspace, sizes: Any) -> dict[str, float]:
    """Per-approval time with filler_large existing orders ÷ with filler_small (PostgreSQL).

    Both databases exist at once and their repeats alternate (small, large, small, large, …), so
    a change in the shared machine's load hits both sides alike.
    """
    k = sizes.scale_approvals
    sides = {}
    for label, filler in (("small", sizes.filler_small), ("large", sizes.filler_large)):
        url, tpl = build_base(
            ws, "postgresql", targets=k * (sizes.repeats + 1), filler=filler, stem=f"scale_{label}"
        )
        sides[label] = (url, tpl, ws.runtime(url))
    per_approval: dict[str, list[float]] = {"small": [], "large": []}
    try:
        for r in range(sizes.repeats + 1):
            for label, (_url, tpl, rt) in sides.items():
                work = _work(rt, tpl, range(1 + r * k, 1 + (r + 1) * k))
                seconds = approve_all(rt, work) / k
                if r:  # the first round warms caches and connections
                    per_approval[label].append(seconds)
    finally:
        for url, _tpl, rt in sides.values():
            rt.db.dispose()
            ws.drop(url)
    small, large = median(per_approval["small"]), median(per_approval["large"])
    log(
        f"scale: {1000 * small:.2f} ms per approval with {sizes.filler_small:,} orders, "
        f"{1000 * large:.2f} ms with {sizes.filler_large:,}"
    )
    return {
        "approvals.scale_ratio_1m_vs_1k": round(large / small, 3),
        "approvals.scale.small_orders": sizes.filler_small,
        "approvals.scale.large_orders": sizes.filler_large,
        "approvals.scale.small_ms_per_approval": round(1000 * small, 3),
        "approvals.scale.large_ms_per_approval": round(1000 * large, 3),
    }
