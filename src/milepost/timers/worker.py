"""The timer worker: fires due timers, one transaction each, until none is due."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from milepost.runtime import Runtime
from milepost.timers import service as timers

log = logging.getLogger("milepost.worker")

# A timer whose handler raised is retried after this delay rather than at once: it is the oldest
# due timer, so retrying it immediately would claim it again and again and starve every timer
# behind it.
RETRY_DELAY = timedelta(minutes=5)


@dataclass
class RunResult:
    fired: int = 0
    failed: int = 0


def run_due(runtime: Runtime, *, limit: int = 100_000) -> RunResult:
    """Fire every timer due at the runtime clock's now. Safe to run in many processes at once."""
    import milepost.timers.handlers  # noqa: F401  (registers the handlers)

    result = RunResult()
    while result.fired + result.failed < limit:
        claimed: int | None = None
        try:
            with runtime.unit_of_work() as ctx:
                timer = timers.claim_next_due(ctx)
                if timer is None:
                    break
                claimed = timer.id
                outcome = timers.fire(ctx, timer)
                log.debug("timer %s %s: %s", timer.id, timer.kind, outcome)
            result.fired += 1
        except Exception as exc:  # a poisoned timer must not stop the others
            log.exception("timer %s failed", claimed)
            result.failed += 1
            if claimed is not None:
                _postpone(runtime, claimed, exc)
            if result.failed > 20:
                break
    return result


def _postpone(runtime: Runtime, timer_id: int, exc: Exception) -> None:
    """Record the failure and retry the timer after RETRY_DELAY (its own transaction)."""
    from milepost.timers.models import Timer

    try:
        with runtime.unit_of_work() as ctx:
            timer = ctx.session.get(Timer, timer_id, with_for_update=True)
            if timer is not None and timer.fired_at is None:
                timer.due_at = ctx.now + RETRY_DELAY
                timer.outcome = f"error: {type(exc).__name__}: {exc}"[:200]
    except Exception:
        log.exception("could not postpone timer %s", timer_id)


def work_pending(runtime: Runtime) -> bool:
    """One cheap read (no write transaction, no row locks): is a timer due, a webhook delivery due, or
    an active webhook endpoint whose queue must be filled from new events? An idle round costs this
    one indexed statement instead of three write transactions (BEGIN IMMEDIATE on SQLite)."""
    from sqlalchemy import select

    from milepost.timers.models import Timer
    from milepost.webhooks.models import WebhookDelivery, WebhookEndpoint

    now = runtime.clock.now()
    query = select(
        select(Timer.id).where(Timer.fired_at.is_(None), Timer.due_at <= now).exists(),
        select(WebhookEndpoint.id).where(WebhookEndpoint.active.is_(True)).exists(),
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now).exists(),
    )
    with runtime.db.engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="DEFERRED")  # a read: no write lock on SQLite
        return any(conn.execute(query).one())


def round_once(runtime: Runtime) -> None:
    """One worker round: fire due timers, then queue and send webhooks — skipped when idle."""
    if not work_pending(runtime):
        return
    run_due(runtime, limit=1000)
    from milepost.webhooks import sender

    sender.deliver_due(runtime)


class Leadership:
    """Which in-process worker of a database runs the loop when `milepost serve` has several uvicorn
    workers: the one holding a PostgreSQL session advisory lock (on a connection it keeps), or on
    SQLite an exclusive flock on a file under the data dir named after the database. The lock dies
    with its process, so another worker takes over within RETRY_ROUNDS rounds. Correctness never
    depends on it (claims use FOR UPDATE SKIP LOCKED / BEGIN IMMEDIATE): it only saves the other
    workers' polling. `milepost worker` processes do not use it and run concurrently."""

    KEY = 0x4D696C65  # "Mile"
    RETRY_ROUNDS = 10

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._conn: Any = None
        self._file: Any = None
        self._rounds = 0

    def held(self) -> bool:
        if self._conn is not None or self._file is not None:
            return True
        self._rounds += 1
        if self._rounds % self.RETRY_ROUNDS != 1:
            return False
        try:
            if self.runtime.db.dialect == "postgresql":
                conn = self.runtime.db.engine.connect()
                got = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self.KEY})").scalar())
                conn.commit()  # a session-level lock outlives the transaction
                if got:
                    self._conn = conn
                else:
                    conn.close()
            else:
                import fcntl
                import hashlib

                name = hashlib.sha256(self.runtime.db.url.encode()).hexdigest()[:16]
                path = Path(self.runtime.settings.data_dir) / f"worker-{name}.lock"
                path.parent.mkdir(parents=True, exist_ok=True)
                f = open(path, "a+")  # noqa: SIM115 (held open as long as the lock)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._file = f
                except OSError:
                    f.close()
        except Exception:
            log.exception("could not take the worker lock")
        return self._conn is not None or self._file is not None

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self.KEY})")
                self._conn.commit()
                self._conn.close()
            except Exception:
                log.exception("could not release the worker lock")
            self._conn = None
        if self._file is not None:
            self._file.close()  # releases the flock
            self._file = None


def run_forever(runtime: Runtime, stop: threading.Event, *, interval: float = 1.0, exclusive: bool = False) -> None:
    """Worker rounds every `interval` seconds until `stop`. With `exclusive` (the in-process worker
    of `milepost serve`) only the process holding the database's worker lock runs them."""
    leader = Leadership(runtime) if exclusive else None
    try:
        while not stop.is_set():
            try:
                if leader is None or leader.held():
                    round_once(runtime)
            except Exception:
                log.exception("worker round failed")
            stop.wait(interval)
    finally:
        if leader is not None:
            leader.release()


def start_in_thread(
    runtime: Runtime, *, interval: float = 1.0, exclusive: bool = False
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(runtime, stop), kwargs={"interval": interval, "exclusive": exclusive},
        daemon=True, name="milepost-worker",
    )
    thread.start()
    return thread, stop


def sleep_until_next(interval: float) -> None:
    time.sleep(interval)
