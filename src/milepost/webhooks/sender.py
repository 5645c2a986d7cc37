"""The webhook outbox sender, run by the worker each round: `deliver_due(runtime)`.

1. **Enqueue.** Each endpoint keeps a cursor (`last_event_id`) into the events table, which is the
   outbox: events are written in the same transaction as the change they describe. New events the
   endpoint wants become `webhook_deliveries` rows (unique per endpoint and event) and the cursor moves,
   in one transaction, so an event is queued exactly once per endpoint.
2. **Send.** Due deliveries are leased (next_attempt_at pushed out, committed) so no other worker takes
   them while the HTTP request is in flight — no transaction is held open across the network. Each
   POST is signed `Milepost-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`; the outcome is
   recorded as an attempt. Failures retry with exponential backoff (30 s, 1 min, 2 min, … capped at
   6 h) until MAX_ATTEMPTS, then the delivery is `failed`. Delivery is at least once: receivers
   deduplicate by the event id (`Milepost-Event-Id`).

The signature's timestamp is real wall-clock time, not the (possibly dev-shifted) service clock, so
receivers can check it against their own clock and replay window.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from milepost.events import repository as events_repo
from milepost.events.models import Event
from milepost.runtime import Runtime
from milepost.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from milepost.webhooks.service import wants
from milepost.webhooks.verify import sign

log = logging.getLogger("milepost.webhooks")

MAX_ATTEMPTS = 12
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
LEASE = timedelta(minutes=2)
TIMEOUT_SECONDS = 10.0
EXCERPT = 500


@dataclass
class SendResult:
    queued: int = 0
    delivered: int = 0
    failed_attempts: int = 0


def backoff(attempts: int) -> timedelta:
    """Wait before retry number `attempts` (1-based): 30 s doubling, capped."""
    exponent = min(max(attempts - 1, 0), 20)  # 2**20 × 30 s is far past the cap; keeps timedelta finite
    return min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)


def event_body(event: Event) -> bytes:
    return json.dumps(
        {"id": event.uid, "type": event.type, "created_at": event.created_at.isoformat(),
         "order_id": event.order_id, "milestone_id": event.milestone_id, "actor_id": event.actor_id,
         "actor_role": event.actor_role, "data": event.payload},
        separators=(",", ":"), sort_keys=True,
    ).encode()


def _locking(query, session):  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


# Event ids come from a sequence, so on PostgreSQL a transaction that took id 100 can commit after
# one that took id 101: the cursor may already have passed 100 when it becomes visible. Each round
# therefore also looks back this many ids behind the cursor for events with no delivery yet.
LOOKBACK_EVENTS = 1000


def _unqueued_behind_cursor(session, endpoint: WebhookEndpoint) -> list[Event]:  # type: ignore[no-untyped-def]
    if endpoint.last_event_id <= 0:
        return []
    queued = select(WebhookDelivery.id).where(
        WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_id == Event.id
    )
    return list(session.scalars(
        select(Event)
        .where(Event.id > endpoint.last_event_id - LOOKBACK_EVENTS, Event.id <= endpoint.last_event_id,
               Event.created_at >= endpoint.created_at,  # history from before the endpoint is not sent
               ~queued.exists())
        .order_by(Event.id)
    ).all())


def enqueue(runtime: Runtime, *, batch: int = 500) -> int:
    queued = 0
    with runtime.unit_of_work() as ctx:
        endpoints = ctx.session.scalars(
            _locking(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)), ctx.session)
        ).all()
        for endpoint in endpoints:
            late_events = _unqueued_behind_cursor(ctx.session, endpoint)
            new_events = events_repo.events_after(ctx.session, endpoint.last_event_id, limit=batch)
            for event in [*late_events, *new_events]:
                if wants(endpoint, event.type):
                    ctx.session.add(
                        WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, status="pending", attempts=0,
                                        next_attempt_at=ctx.now, created_at=ctx.now)
                    )
                    queued += 1
            if new_events:
                endpoint.last_event_id = new_events[-1].id
    return queued


Claimed = tuple[int, str, str, bytes, str, str]


def _claim(runtime: Runtime, limit: int) -> list[Claimed]:
    """Lease due deliveries: (delivery id, url, secret, body, event uid, event type)."""
    claimed: list[Claimed] = []
    with runtime.unit_of_work() as ctx:
        rows = ctx.session.scalars(
            _locking(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= ctx.now)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit),
                ctx.session,
            )
        ).all()
        for d in rows:
            endpoint = ctx.session.get(WebhookEndpoint, d.endpoint_id)
            event = ctx.session.get(Event, d.event_id)
            if endpoint is None or event is None:
                continue
            d.next_attempt_at = ctx.now + LEASE
            claimed.append((d.id, endpoint.url, endpoint.secret, event_body(event), event.uid, event.type))
    return claimed


def _post(client: httpx.Client, url: str, secret: str, body: bytes, event_uid: str,
          event_type: str) -> tuple[int | None, str | None, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Milepost-Webhooks/1",
        "Milepost-Signature": sign(secret, body, int(time.time())),
        "Milepost-Event-Id": event_uid,
        "Milepost-Event-Type": event_type,
    }
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500], ""
    return response.status_code, None, response.text[:EXCERPT]


def _record(runtime: Runtime, delivery_id: int, *, status_code: int | None, error: str | None,
            excerpt: str, duration_ms: int) -> bool:
    ok = status_code is not None and 200 <= status_code < 300
    with runtime.unit_of_work() as ctx:
        d = ctx.session.get(WebhookDelivery, delivery_id)
        if d is None:
            return ok
        now: datetime = ctx.now
        d.attempts += 1
        ctx.session.add(
            WebhookAttempt(delivery_id=d.id, attempted_at=now, status_code=status_code,
                           error=error or (None if ok else f"HTTP {status_code}"), duration_ms=duration_ms,
                           response_excerpt={"body": excerpt} if excerpt else None)
        )
        if ok:
            d.status, d.delivered_at, d.next_attempt_at = "delivered", now, None
        elif d.attempts >= MAX_ATTEMPTS:
            d.status, d.next_attempt_at = "failed", None
        else:
            d.next_attempt_at = now + backoff(d.attempts)
    return ok


def deliver_due(runtime: Runtime, *, limit: int = 100, client: httpx.Client | None = None) -> SendResult:
    """Queue new events for every endpoint, then attempt every due delivery once."""
    result = SendResult(queued=enqueue(runtime))
    claimed = _claim(runtime, limit)
    if not claimed:
        return result
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    try:
        for delivery_id, url, secret, body, uid, etype in claimed:
            started = time.monotonic()
            status_code, error, excerpt = _post(client, url, secret, body, uid, etype)
            duration_ms = int((time.monotonic() - started) * 1000)
            if _record(runtime, delivery_id, status_code=status_code, error=error, excerpt=excerpt,
                       duration_ms=duration_ms):
                result.delivered += 1
            else:
                result.failed_attempts += 1
    finally:
        if own:
            client.close()
    return result
