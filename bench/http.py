"""HTTP: a mixed buyer/seller workload against `milepost serve` on PostgreSQL, stepping the rate up.

The server runs as its own process tree (`milepost serve --workers N`, uvicorn workers, each with
the in-process timer worker) on 127.0.0.1 against a fresh migrated database of the throwaway
cluster. Buyer/seller pairs register through the API. The load generator (bench.loadgen, async
httpx, open loop) runs in a separate process per step; each step offers a fixed rate for a fixed
time. A warm-up first takes every pair through one whole lifecycle (closed loop, each user on its
own connection, so every worker has served every kind of request); the pairs' places in their
lifecycles carry over from step to step. A step is *sustained* when ≥ 95 % of the offered arrivals
completed, no request failed and p99 < 100 ms; the result is the highest sustained step (its p50/p99
reported, and per endpoint under http.endpoints.*). The coarse ladder stops at the first
unsustained step, then quarter steps between the last sustained rate and that one refine it. The
server tree's RSS is sampled throughout: memory.serve_peak_mb is the peak of the sum, the other
memory.serve_* keys the supervisor's and the largest single process's peaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import Workspace, children_of, log, rss_mb
from milepost.devtools.postgres import free_port, wait_for_port

SERVE_WORKERS = int(os.environ.get("BENCH_SERVE_WORKERS", "4"))
PAIRS = int(os.environ.get("BENCH_HTTP_PAIRS", "40"))
P99_TARGET_MS = 100.0


def _register(client: httpx.Client, email: str) -> dict[str, str]:
    resp = client.post(
        "/v1/auth/register",
        json={"email": email, "password": "bench password 123", "name": email.split("@")[0]},
    )
    resp.raise_for_status()
    return {"token": resp.json()["token"], "email": email}


def _users_with_tokens(ws: Workspace, url: str, n_pairs: int) -> list[dict[str, Any]]:
    """Users made directly in the database, sharing one password hash (argon2 is deliberately slow
    and registration is not what is measured); each gets a real API token."""
    from milepost.accounts import service as accounts
    from milepost.accounts.models import User
    from milepost.db import new_id

    password_hash = accounts._hasher.hash("bench password 123")
    rt = ws.runtime(url)
    pairs = []
    try:
        with rt.unit_of_work() as ctx:
            users = {}
            for i in range(n_pairs):
                for role in ("buyer", "seller"):
                    email = f"{role[0]}{i}@load.example"
                    users[email] = User(
                        id=new_id("usr"),
                        email=email,
                        name=f"{role} {i}",
                        password_hash=password_hash,
                        is_operator=False,
                        locale="en_US",
                        timezone="UTC",
                        created_at=ctx.now,
                    )
                    ctx.session.add(users[email])
            ctx.session.flush()
            for i in range(n_pairs):
                pairs.append(
                    {
                        role: {
                            "email": f"{role[0]}{i}@load.example",
                            "token": accounts.issue_token(
                                ctx, users[f"{role[0]}{i}@load.example"], name="bench"
                            ),
                        }
                        for role in ("buyer", "seller")
                    }
                )
    finally:
        rt.db.dispose()
    return pairs


def run(ws: Workspace, sizes: Any) -> dict[str, float]:
    url = ws.new_database("postgresql", "http")
    port = free_port()
    data_dir = ws.root / "http-data"
    data_dir.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "MILEPOST_DATABASE_URL": url,
        "MILEPOST_DATA_DIR": str(data_dir),
        "MILEPOST_DEV_CLOCK": "0",
    }
    milepost = Path(sys.executable).parent / "milepost"
    server = subprocess.Popen(
        [
            str(milepost),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(SERVE_WORKERS),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(ws.root / "serve.log", "w"),  # noqa: SIM115
    )
    peak = [0.0]
    peak_by_pid: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pids, i = [server.pid], 0
            while i < len(pids):  # the supervisor, its workers, and anything they started
                pids.extend(children_of(pids[i]))
                i += 1
            rss = {pid: rss_mb(pid) for pid in pids}
            peak[0] = max(peak[0], sum(rss.values()))
            for pid, mb in rss.items():
                peak_by_pid[pid] = max(peak_by_pid.get(pid, 0.0), mb)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    steps: list[dict[str, Any]] = []
    try:
        try:
            wait_for_port(port, timeout=180)
        except TimeoutError:
            raise RuntimeError(
                f"milepost serve did not start (exit {server.poll()}): "
                f"{(ws.root / 'serve.log').read_text()[-1500:]}"
            ) from None
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(100):  # every worker process up and answering
                try:
                    if client.get("/openapi.json").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            _register(client, "first@load.example")  # the real path works
            pairs = _users_with_tokens(ws, url, PAIRS)
        log(f"http: serve with {SERVE_WORKERS} workers on :{port}, {PAIRS} pairs registered")
        state = ws.root / "pairs-state.json"
        # Warm-up: every pair runs one whole lifecycle closed-loop, each user on its own
        # connection, so every worker process has served every kind of request (first-call costs:
        # lazy imports, SQL compilation, pool connections) before anything is measured, and the
        # pairs leave it at different points of their lifecycles, so the measured mix is steady.
        warm = _step(ws, base, pairs, rate=1, seconds=120, state=state, warm_lifecycles=1)
        log(
            f"http warm-up: {warm['completed']} requests, {warm['lifecycles_completed']} "
            f"lifecycles, {warm['achieved_rps']:.0f} rps closed-loop, p50 {warm['p50_ms']:.0f} ms"
        )

        def measure(rate: int) -> dict[str, Any]:
            result = _step(ws, base, pairs, rate=rate, seconds=sizes.http_step_seconds, state=state)
            result["sustained"] = (
                result["completed"] >= 0.95 * result["arrivals"]
                and result["errors"] == 0
                and result["p99_ms"] < P99_TARGET_MS
            )
            steps.append(result)
            slow = sorted(result["endpoints"].items(), key=lambda kv: -kv[1]["p99_ms"])[:3]
            log(
                f"http {rate} rps offered: {result['achieved_rps']:.0f} rps done, p50 {result['p50_ms']:.1f} ms, "
                f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']}, not offered "
                f"{result['not_offered']} → {'sustained' if result['sustained'] else 'NOT sustained'}; "
                "slowest p99: "
                + ", ".join(f"{route} {v['p99_ms']:.0f} ms" for route, v in slow)
                + (f" {result['error_samples'][:2]}" if result["errors"] else "")
            )
            return result

        # The coarse ladder up to the first unsustained step, then a finer one between the last
        # sustained step and that one (quarters), again up to the first unsustained.
        last_ok = 0
        failed = None
        for rate in sizes.http_rates:
            if not measure(rate)["sustained"]:
                failed = rate
                break
            last_ok = rate
        if failed is not None and failed - last_ok > 2:
            for k in (1, 2, 3):
                rate = round(last_ok + (failed - last_ok) * k / 4)
                if rate <= last_ok or not measure(rate)["sustained"]:
                    break
                last_ok = rate
    finally:
        stop.set()
        sampler.join(timeout=5)
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        ws.drop(url)
    ok = [s for s in steps if s["sustained"]]
    best = max(ok, key=lambda s: s["rate"]) if ok else (steps[0] if steps else {})
    (ws.root / "http-steps.json").write_text(json.dumps(steps))
    # uvicorn's supervisor logs "Child process [pid] died" when it kills and replaces a worker
    # (a restarted worker is cold and its open connections are cut): worth knowing about a run.
    restarts = (ws.root / "serve.log").read_text(errors="replace").count(" died")
    if restarts:
        log(f"http: uvicorn restarted a worker {restarts} time(s) during the run")
    peaks = sorted(peak_by_pid.items())
    log(
        "serve RSS peaks (MiB): "
        + ", ".join(f"{'supervisor' if pid == server.pid else pid} {mb:.0f}" for pid, mb in peaks)
    )
    out: dict[str, float] = {
        "http.max_rate_rps": float(best.get("rate", 0)) if ok else 0.0,
        "http.achieved_rps": round(best.get("achieved_rps", 0.0), 1),
        "http.p50_ms": round(best.get("p50_ms", 0.0), 2),
        "http.p99_ms": round(best.get("p99_ms", 0.0), 2),
        "http.serve_workers": SERVE_WORKERS,
        "http.step_seconds": sizes.http_step_seconds,
        "http.steps_run": len(steps),
        "http.worker_restarts": restarts,
        "memory.serve_peak_mb": round(peak[0], 1),
        "memory.serve_supervisor_mb": round(peak_by_pid.get(server.pid, 0.0), 1),
        "memory.serve_process_max_mb": round(max((mb for _, mb in peaks), default=0.0), 1),
    }
    # Per endpoint at the reported step: http.endpoints.<method>_<route>.{count,p50_ms,p99_ms}
    for route, figures in best.get("endpoints", {}).items():
        name = _endpoint_key(route)
        out[f"http.endpoints.{name}.count"] = figures["count"]
        out[f"http.endpoints.{name}.p50_ms"] = figures["p50_ms"]
        out[f"http.endpoints.{name}.p99_ms"] = figures["p99_ms"]
    return out


def _endpoint_key(route: str) -> str:
    """`POST /v1/orders/{id}/accept` → `post_orders_id_accept` (a dotted-key-safe name)."""
    method, _, path = route.partition(" ")
    path = path.split("?", 1)[0].removeprefix("/v1/")
    parts = [p.strip("{}") for p in path.split("/") if p]
    return "_".join([method.lower(), *parts])


def _step(
    ws: Workspace,
    base: str,
    pairs: list[dict[str, Any]],
    *,
    rate: float,
    seconds: float,
    state: Path,
    warm_lifecycles: int = 0,
) -> dict[str, Any]:
    config = ws.root / "loadgen.json"
    config.write_text(
        json.dumps(
            {
                "base": base,
                "pairs": pairs,
                "rate": rate,
                "seconds": seconds,
                "state": str(state),
                "closed_loop_lifecycles": warm_lifecycles,
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(config)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
