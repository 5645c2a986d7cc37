"""The timer worker: fires due timers, one transaction each, until none is due."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

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


def run_forever(runtime: Runtime, stop: threading.Event, *, interval: float = 1.0) -> None:
    while not stop.is_set():
        try:
            run_due(runtime, limit=1000)
            from milepost.webhooks import sender

            sender.deliver_due(runtime)
        except Exception:
            log.exception("worker round failed")
        stop.wait(interval)


def start_in_thread(runtime: Runtime, *, interval: float = 1.0) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(runtime, stop), kwargs={"interval": interval}, daemon=True,
        name="milepost-worker",
    )
    thread.start()
    return thread, stop


def sleep_until_next(interval: float) -> None:
    time.sleep(interval)
