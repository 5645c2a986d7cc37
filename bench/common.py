"""Shared benchmark plumbing: sizes, a throwaway PostgreSQL, migrated databases, timing, RSS.

Benchmarks never assert speed; they measure and record. Every figure is a median over repeats, and
every ratio compares two measurements taken in the same repeat (the machine may be shared and noisy).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milepost import migrate
from milepost.clock import FixedClock
from milepost.config import Settings
from milepost.db import Database, make_engine
from milepost.devtools.postgres import PostgresCluster
from milepost.payouts.provider import provider_for
from milepost.runtime import Runtime

QUICK = os.environ.get("BENCH_QUICK", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is. QUICK keeps the whole run under five minutes."""

    approvals: int  # approvals per timed run
    repeats: int
    filler_small: int  # existing orders in the "1k" database
    filler_large: int  # existing orders in the "1M" database
    scale_approvals: int
    forecast_milestones: int
    journal_postings: int  # also the exports' size (memory.export_postings)
    http_step_seconds: float
    http_rates: tuple[int, ...]


FULL = Sizes(
    approvals=1000,
    repeats=3,
    filler_small=1_000,
    filler_large=1_000_000,
    scale_approvals=500,
    forecast_milestones=10_000,
    journal_postings=1_000_000,
    http_step_seconds=10.0,
    http_rates=(5, 10, 25, 50, 100, 150, 200, 300, 400, 600, 800),
)
SMALL = Sizes(
    approvals=200,
    repeats=3,
    filler_small=1_000,
    filler_large=100_000,
    scale_approvals=200,
    forecast_milestones=10_000,
    journal_postings=100_000,
    http_step_seconds=8.0,
    http_rates=(5, 10, 25, 50, 100, 200, 300, 400),
)
TINY = Sizes(  # the smoke test: every benchmark end to end in seconds
    approvals=20,
    repeats=1,
    filler_small=50,
    filler_large=200,
    scale_approvals=20,
    forecast_milestones=200,
    journal_postings=2_000,
    http_step_seconds=1.0,
    http_rates=(5, 10),
)


def sizes() -> Sizes:
    if os.environ.get("BENCH_TINY"):
        return TINY
    return SMALL if QUICK else FULL


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def now() -> float:
    return time.perf_counter()


@contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t: ...` then t[0] is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


class Workspace:
    """A temporary directory and (lazily) one throwaway PostgreSQL cluster, both removed at close."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="milepost-bench-"))
        self._pg: PostgresCluster | None = None
        self._n = 0

    @property
    def pg(self) -> PostgresCluster:
        if self._pg is None:
            log("starting a throwaway PostgreSQL cluster")
            self._pg = PostgresCluster.start(max_connections=300)
        return self._pg

    def unique(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def new_database(self, dialect: str, stem: str = "db", *, template: str | None = None) -> str:
        """A fresh migrated database (or a copy of `template`): returns its SQLAlchemy URL."""
        name = self.unique(stem)
        if dialect == "sqlite":
            path = self.root / f"{name}.sqlite3"
            if template:
                shutil.copyfile(template.removeprefix("sqlite:///"), path)
                return f"sqlite:///{path}"
            url = f"sqlite:///{path}"
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
            return url
        if template:
            return self.pg.create_database(name, template=template.rsplit("/", 1)[1])
        url = self.pg.create_database(name)
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        return url

    def drop(self, url: str) -> None:
        if url.startswith("sqlite"):
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        elif self._pg is not None:
            self._pg.drop_database(url.rsplit("/", 1)[1])

    def runtime(self, url: str, *, clock: Any = None, pool_size: int = 10) -> Runtime:
        """A Runtime on `url` with installation defaults (and a fixed clock unless one is given)."""
        return make_runtime(url, data_dir=self.root / "data", clock=clock, pool_size=pool_size)

    def close(self) -> None:
        if self._pg is not None:
            log("stopping the PostgreSQL cluster")
            self._pg.stop()
            self._pg = None
        shutil.rmtree(self.root, ignore_errors=True)


def make_runtime(url: str, *, data_dir: Path, clock: Any = None, pool_size: int = 10) -> Runtime:
    settings = Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
    return Runtime(
        settings=settings,
        db=Database(url, pool_size=pool_size),
        clock=clock or FixedClock(),
        provider=provider_for(settings.payment_provider),
    )


def raw_sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def raw_pg_conninfo(url: str) -> str:
    # postgresql+psycopg://postgres@127.0.0.1:PORT/NAME
    rest = url.split("://", 1)[1]
    user_host, name = rest.rsplit("/", 1)
    user, hostport = user_host.split("@")
    host, port = hostport.split(":")
    return f"host={host} port={port} user={user} dbname={name}"


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MiB (from /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except OSError:
                continue
    except OSError:
        pass
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants (a uvicorn supervisor and its workers)."""
    total = rss_mb(pid)
    for child in children_of(pid):
        total += tree_rss_mb(child)
    return total


def peak_rss_mb_of_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run fn in this process; return its result and the peak RSS this process reached (MiB).

    Uses the kernel's high-water mark (VmHWM), reset first where the kernel allows it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    result = fn()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return result, int(line.split()[1]) / 1024
    return result, 0.0
