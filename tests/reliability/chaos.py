"""kill -9 under load: the server and the worker die at random moments and come back.

Clients keep driving orders through the lifecycle (every POST with its Idempotency-Key, retried
as-is on a dropped connection or a 5xx). Meanwhile the `milepost serve` process (with its
in-process worker) and a separate `milepost worker` are killed with SIGKILL at random moments and
restarted. Afterwards every acknowledged command must be in the database exactly once, nothing
duplicated, every due timer fired, and `milepost audit` clean.

    python -m tests.reliability.chaos                 # long: >= 20 kills on PostgreSQL and on SQLite
    python -m tests.reliability.chaos --kills 5 --backend sqlite

Traffic goes to 127.0.0.1 only; the run stops by itself once the kills are done.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from milepost.devtools.postgres import PostgresCluster
from tests.reliability.harness import Stack, assert_audit_clean, wait_healthy
from tests.reliability.load import Ledger, check_acknowledged, run_clients


def run_chaos(stack: Stack, *, kills: int, clients: int = 4, min_seconds: float = 10.0,
              seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    server = stack.start_server()
    port = server.port
    worker = stack.start_worker()
    stop = threading.Event()
    result: dict[str, Any] = {}

    def load() -> None:
        result["ledger"], result["errors"] = run_clients(
            [server.url], clients=clients, seconds=3600, tag=f"chaos-{stack.backend}", stop=stop,
            terms={"clearance_days": 0, "review_days": 1})

    started = time.monotonic()
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    killed = {"server": 0, "worker": 0}
    try:
        while sum(killed.values()) < kills or time.monotonic() - started < min_seconds:
            time.sleep(rng.uniform(1.0, 3.0))
            target = rng.choice(["server", "server", "worker", "both"])
            if target in ("server", "both"):
                server.kill(signal.SIGKILL)
                killed["server"] += 1
            if target in ("worker", "both"):
                worker.kill(signal.SIGKILL)
                killed["worker"] += 1
            if not worker.alive():
                worker = stack.start_worker()
            if not server.alive():
                server = stack.start_server(port=port, wait=False)
                wait_healthy(server)
    finally:
        stop.set()
        thread.join(300)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), "the clients did not finish"
    ledger: Ledger = result["ledger"]
    assert not result["errors"], result["errors"]

    # Let the survivors finish what fell due, then check that nothing was lost or doubled.
    now = datetime.now(UTC)
    deadline = time.monotonic() + 60
    while stack.scalar("SELECT count(*) FROM timers WHERE fired_at IS NULL AND due_at <= :n", n=now):
        assert time.monotonic() < deadline, "due timers left unfired after the run"
        time.sleep(0.5)
    failed = stack.query("SELECT kind, outcome FROM timers WHERE outcome LIKE 'error%'")
    assert not failed, failed
    acknowledged = check_acknowledged(stack, ledger)
    report = assert_audit_clean(stack)
    return {
        "backend": stack.backend, "seconds": round(elapsed, 1), "clients": clients,
        "kills": sum(killed.values()), "server_kills": killed["server"], "worker_kills": killed["worker"],
        "requests": ledger.requests, "retries": ledger.retries,
        "statuses": dict(ledger.statuses),
        "acknowledged": acknowledged, "acknowledged_total": sum(acknowledged.values()),
        "answered_from_idempotency_record": sum(1 for a in ledger.acks if a.replayed),
        "transfers": report["transfers"], "postings": report["postings"],
        "lost": 0, "duplicated": 0, "audit": "clean",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs per database (default 24)")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--min-seconds", type=float, default=60.0)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--out", default="test-artifacts/reliability")
    args = parser.parse_args(argv)
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cluster = PostgresCluster.start() if "postgres" in backends else None
    try:
        for backend in backends:
            workdir = Path(tempfile.mkdtemp(prefix=f"milepost-chaos-{backend}-"))
            stack = Stack(workdir, backend, cluster if backend == "postgres" else None, dev_clock=False)
            try:
                figures = run_chaos(stack, kills=args.kills, clients=args.clients, min_seconds=args.min_seconds)
            finally:
                stack.close()
            print(json.dumps(figures, indent=2))
            (out / f"chaos-long-{backend}.json").write_text(json.dumps(figures, indent=2))
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
