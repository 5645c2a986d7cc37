"""Black-box harness: real `milepost serve` / `milepost worker` processes over a real database.

Everything listens on 127.0.0.1 only, on free ports; every process is started here, kept by pid and
killed by pid in `Stack.close()` (called from `finally` blocks and fixtures). A `Stack` is one
database (a fresh database on a throwaway PostgreSQL cluster, or a fresh SQLite file) plus the
processes that serve it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from milepost.devtools.postgres import PostgresCluster, free_port

MILEPOST = str(Path(sys.executable).with_name("milepost"))
PASSWORD = "correct horse battery"
SECRET_KEY = "reliability-tests-secret-key-0123456789"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_db_counter = itertools.count()


@dataclass
class Proc:
    kind: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal this process group only (uvicorn --workers forks children into it)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    """One database and the Milepost processes running against it."""

    workdir: Path
    backend: str  # "sqlite" | "postgres"
    cluster: PostgresCluster | None = None
    dev_clock: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    database_url: str = ""
    _engine: Any = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        if self.backend == "postgres":
            assert self.cluster is not None
            name = f"rel_{os.getpid()}_{next(_db_counter)}_{uuid.uuid4().hex[:6]}"
            self.database_url = self.cluster.create_database(name)
        else:
            self.database_url = f"sqlite:///{self.workdir / 'data' / 'milepost.sqlite3'}"
        self.milepost("db", "upgrade")

    # -- environment and processes ------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
        env.update({
            "MILEPOST_DATA_DIR": str(self.workdir / "data"),
            "MILEPOST_SECRET_KEY": SECRET_KEY,
            "MILEPOST_WORKER_INTERVAL_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        })
        if self.backend == "postgres":
            env["MILEPOST_DATABASE_URL"] = self.database_url
        if self.dev_clock:
            env["MILEPOST_DEV_CLOCK"] = "1"
        env.update(self.extra_env)
        return env

    def milepost(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([MILEPOST, *args], env=self.env(), capture_output=True, text=True,
                                timeout=timeout, cwd=self.workdir)
        if check and result.returncode != 0:
            raise AssertionError(f"milepost {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def _spawn(self, kind: str, args: list[str], port: int | None = None) -> Proc:
        n = sum(1 for p in self.procs if p.kind == kind)
        log_path = self.workdir / f"{kind}-{n}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen([MILEPOST, *args], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, start_new_session=True)
        proc = Proc(kind, popen, log_path, port)
        self.procs.append(proc)
        return proc

    def start_server(self, *, port: int | None = None, no_worker: bool = False, workers: int = 1,
                     wait: bool = True) -> Proc:
        port = port or free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        if no_worker:
            args.append("--no-worker")
        if workers > 1:
            args += ["--workers", str(workers)]
        proc = self._spawn("server", args, port)
        if wait:
            wait_healthy(proc)
        return proc

    def start_worker(self) -> Proc:
        return self._spawn("worker", ["worker", "--interval", "0.2"])

    def close(self) -> None:
        for proc in self.procs:
            proc.kill(signal.SIGKILL)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self.cluster is not None and self.database_url:
            with contextlib.suppress(Exception):
                self.cluster.drop_database(self.database_url.rsplit("/", 1)[1])

    # -- checking the database ----------------------------------------------------------------

    def audit(self) -> dict[str, Any]:
        """`milepost audit --json` as a subprocess: the same check an operator runs."""
        result = self.milepost("audit", "--json", check=False)
        report = json.loads(result.stdout)
        report["exit_code"] = result.returncode
        return report

    def query(self, sql: str, **params: Any) -> list[Any]:
        if self._engine is None:
            self._engine = create_engine(self.database_url, pool_size=2)
        with self._engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []

    def scalar(self, sql: str, **params: Any) -> Any:
        rows = self.query(sql, **params)
        return rows[0][0] if rows else None


def wait_healthy(proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"{proc.kind} exited {proc.popen.returncode}:\n{proc.log()[-3000:]}")
        try:
            if httpx.get(proc.url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{proc.kind} on {proc.port} not healthy after {timeout}s:\n{proc.log()[-3000:]}")


def assert_audit_clean(stack: Stack) -> dict[str, Any]:
    report = stack.audit()
    bad = [c for c in report["checks"] if not c["ok"]]
    assert report["exit_code"] == 0 and report["ok"] and not bad, json.dumps(bad, indent=1)[:4000]
    return report


# ---------------------------------------------------------------------------------------------
# A small API client
# ---------------------------------------------------------------------------------------------


def milestones(*amounts: int, due_days: int = 5) -> list[dict[str, Any]]:
    return [{"title": f"Part {i}", "description": "one part", "acceptance_criteria": [f"part {i} done"],
             "amount": a, "due_days": due_days} for i, a in enumerate(amounts, start=1)]


class Api:
    """Thin helpers over httpx for one base URL; every POST may carry an Idempotency-Key."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def post(self, path: str, token: str | None = None, body: Any = None, *, key: str | None = None,
             **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key:
            headers["Idempotency-Key"] = key
        return self.http.post(path, json=body, headers=headers, **kw)

    def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(path, headers=headers, **kw)

    def ok(self, response: httpx.Response, *statuses: int) -> Any:
        assert response.status_code in (statuses or (200, 201)), (response.request.url, response.text)
        return response.json()

    def register(self, email: str, name: str = "User") -> str:
        r = self.post("/v1/auth/register", body={"email": email, "password": PASSWORD, "name": name})
        return str(self.ok(r, 201)["token"])

    def order(self, buyer: str, seller_email: str, amounts: Iterable[int], *, terms: dict[str, Any] | None = None,
              fund: bool = True, seller: str | None = None, currency: str = "USD") -> dict[str, Any]:
        """An agreed (and by default funded) order proposed by the buyer and accepted by the seller."""
        body: dict[str, Any] = {"role": "buyer", "counterparty_email": seller_email, "title": "Reliability",
                                "currency": currency, "milestones": milestones(*amounts)}
        if terms:
            body["terms"] = terms
        order = self.ok(self.post("/v1/orders", buyer, body), 201)
        assert seller is not None
        self.ok(self.post(f"/v1/orders/{order['id']}/accept", seller, {"plan_version": order["plan_version"]}))
        if fund:
            order = self.ok(self.post(f"/v1/orders/{order['id']}/fund", buyer, {}))
        return order  # type: ignore[no-any-return]

    def deliver(self, seller: str, order_id: str, milestone_id: str) -> httpx.Response:
        return self.post(f"/v1/orders/{order_id}/milestones/{milestone_id}/deliveries", seller,
                         {"message": "here it is"})

    def approve(self, buyer: str, order_id: str, milestone_id: str) -> httpx.Response:
        return self.post(f"/v1/orders/{order_id}/milestones/{milestone_id}/approve", buyer)

    def get_order(self, token: str, order_id: str) -> dict[str, Any]:
        return self.ok(self.get(f"/v1/orders/{order_id}", token))  # type: ignore[no-any-return]
