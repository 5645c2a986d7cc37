"""Scale-out: two API processes and two `milepost worker` processes on one PostgreSQL, under load.

Clients spread their requests over both API ports. Clearance is 0 days, so every approval
schedules a clearance timer that is due at once and the two workers race for it; afterwards the
review deadlines of the deliveries left unanswered are moved into the past (the database is the
clock everyone shares) so both workers also race for the auto-approve timers. Then: every timer
fired exactly once with a real outcome, no money moved twice, every event reached the 127.0.0.1
webhook receiver at least once with a valid signature, and `milepost audit` is clean.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import Api, Stack, assert_audit_clean
from tests.reliability.load import WebhookReceiver, check_acknowledged, run_clients

FIGURES = Path(os.environ.get("MILEPOST_FIGURES_DIR", "test-artifacts/reliability"))


def record(name: str, figures: dict[str, Any]) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def scale_out_run(make_stack: Any, *, seconds: float, clients: int, name: str) -> dict[str, Any]:
    stack: Stack = make_stack("postgres", dev_clock=False)
    receiver = WebhookReceiver()
    try:
        op = stack.milepost("user", "create", "ops@example.com", "--name", "Ops", "--password",
                            "correct horse battery", "--operator")
        assert op.returncode == 0
        servers = [stack.start_server(no_worker=True), stack.start_server(no_worker=True)]
        workers = [stack.start_worker(), stack.start_worker()]
        api = Api(servers[0].url)
        op_token = api.ok(api.post("/v1/auth/tokens", body={"email": "ops@example.com",
                                                            "password": "correct horse battery"}), 201)["token"]
        hook = api.ok(api.post("/v1/webhooks", op_token, {"url": receiver.url}), 201)
        receiver.secret = hook["secret"]

        started = time.monotonic()
        ledger, errors = run_clients([s.url for s in servers], clients=clients, seconds=seconds, tag=name,
                                     terms={"clearance_days": 1, "review_days": 1})
        elapsed = time.monotonic() - started
        assert not errors, errors
        assert ledger.statuses and max(ledger.statuses) < 500, ledger.statuses

        # Let the unanswered reviews and the clearance periods run out: move their deadlines (and
        # timers) into the past, twice, since an auto-approval opens a new clearance period.
        for _ in range(2):
            past = datetime.now(UTC) - timedelta(seconds=1)
            stack.query("UPDATE milestones SET review_due_at = :p WHERE status = 'delivered'", p=past)
            stack.query("UPDATE clearing_lots SET available_at = :p WHERE cleared_at IS NULL", p=past)
            stack.query("UPDATE timers SET due_at = :p WHERE kind IN ('auto_approve', 'clear_lot') "
                        "AND fired_at IS NULL", p=past)
            now = datetime.now(UTC)
            wait_until(lambda: stack.scalar(
                "SELECT count(*) FROM timers WHERE fired_at IS NULL AND due_at <= :n", n=now) == 0,  # noqa: B023
                120, "every due timer to fire")
        assert stack.scalar("SELECT count(*) FROM milestones WHERE status = 'delivered'") == 0

        # Every timer fired once, with an outcome; nothing failed.
        fired = stack.query("SELECT kind, outcome FROM timers WHERE fired_at IS NOT NULL")
        assert fired
        assert not [o for _, o in fired if o is None or o.startswith("error")], fired
        by_kind: dict[str, int] = {}
        for kind, _ in fired:
            by_kind[kind] = by_kind.get(kind, 0) + 1
        applied_clear = stack.scalar("SELECT count(*) FROM timers WHERE kind = 'clear_lot' AND outcome = 'applied'")
        assert applied_clear == stack.scalar("SELECT count(*) FROM transfers WHERE kind = 'clear'")
        assert stack.scalar("SELECT count(*) FROM clearing_lots WHERE cleared_at IS NULL") == 0
        assert stack.scalar("SELECT count(*) FROM transfers WHERE kind = 'release'") == stack.scalar(
            "SELECT count(*) FROM milestones WHERE status = 'approved'")
        auto = stack.scalar("SELECT count(*) FROM timers WHERE kind = 'auto_approve' AND outcome = 'applied'")
        for w in workers:
            assert w.alive() and " failed" not in w.log(), w.log()[-3000:]
        acknowledged = check_acknowledged(stack, ledger)

        # Webhooks: each event delivered (at least once), signed, deduplicable by id.
        total_events = stack.scalar("SELECT count(*) FROM events")
        with contextlib.suppress(AssertionError):  # reported with the figures below
            wait_until(lambda: len(receiver.received) >= total_events, 60, "every event at the webhook receiver")
        if True:
            never_queued = stack.scalar("SELECT count(*) FROM events e WHERE NOT EXISTS "
                                        "(SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)")
            undelivered = stack.query("SELECT status, count(*) FROM webhook_deliveries "
                                      "WHERE status <> 'delivered' GROUP BY status")
        uids = {r[0] for r in stack.query("SELECT uid FROM events")}
        assert set(receiver.received) == uids, (
            f"{len(uids - set(receiver.received))} of {len(uids)} events never reached the receiver; "
            f"{never_queued} were never queued; not delivered: {undelivered}")
        assert receiver.bad_signatures == 0
        report = assert_audit_clean(stack)
        latencies = sorted(ledger.latencies_ms)
        figures = {
            "api_processes": len(servers), "worker_processes": len(workers), "clients": clients,
            "seconds": round(elapsed, 1), "requests": ledger.requests,
            "requests_per_second": round(ledger.requests / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2], 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1),
            "statuses": dict(ledger.statuses), "acknowledged": acknowledged,
            "timers_fired": by_kind, "auto_approved": auto, "clear_transfers": applied_clear,
            "events": total_events, "webhook_posts": sum(receiver.received.values()),
            "webhook_duplicates": sum(receiver.received.values()) - len(receiver.received),
            "transfers": report["transfers"], "postings": report["postings"], "audit": "clean",
        }
        record(name, figures)
        return figures
    finally:
        receiver.close()
        stack.close()


def test_two_api_processes_and_two_workers_on_one_postgres(make_stack: Any) -> None:
    figures = scale_out_run(make_stack, seconds=10, clients=4, name="scale-out-short")
    assert figures["acknowledged"]["approve"] > 0 and figures["auto_approved"] > 0
    assert figures["timers_fired"]["clear_lot"] > 0


@pytest.mark.long
@pytest.mark.chaos
def test_two_api_processes_and_two_workers_long(make_stack: Any) -> None:
    figures = scale_out_run(make_stack, seconds=120, clients=12, name="scale-out-long")
    assert figures["acknowledged"]["approve"] > 100
