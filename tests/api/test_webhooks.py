"""Webhooks: outbox delivery to a real HTTP receiver on 127.0.0.1, signatures, retry with backoff."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from milepost.clock import FixedClock
from milepost.runtime import Runtime
from milepost.webhooks import sender
from milepost.webhooks.verify import InvalidSignature, sign, verify_signature
from tests.api.conftest import Party, milestones


class Receiver:
    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if len(receiver.requests) <= receiver.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


def test_events_are_delivered_signed_and_retried(
    client: TestClient, parties: dict[str, Party], runtime: Runtime, clock: FixedClock, receiver: Receiver
) -> None:
    operator, buyer, seller = parties["operator"], parties["buyer"], parties["seller"]
    hook = client.post("/v1/webhooks", headers=operator.headers,
                       json={"url": receiver.url, "event_types": ["order.*"]})
    assert hook.status_code == 201
    hook_id, secret = hook.json()["id"], hook.json()["secret"]
    assert secret and client.get("/v1/webhooks", headers=operator.headers).json()["items"][0]["secret"] is None

    order = client.post("/v1/orders", headers=buyer.headers, json={
        "role": "buyer", "counterparty_email": seller.email, "title": "Logo", "currency": "USD",
        "milestones": milestones(10_000)}).json()

    first = sender.deliver_due(runtime)
    assert first.queued == 1 and first.failed_attempts == 1 and len(receiver.requests) == 1
    assert sender.deliver_due(runtime).failed_attempts == 0  # backoff: not due yet
    clock.advance(sender.backoff(1) + timedelta(seconds=1))
    second = sender.deliver_due(runtime)
    assert second.delivered == 1 and len(receiver.requests) == 2

    (h1, b1), (h2, b2) = receiver.requests
    assert b1 == b2 and h1["milepost-event-id"] == h2["milepost-event-id"]  # deduplicable by event id
    event = json.loads(b2)
    assert event["type"] == "order.proposed" and event["order_id"] == order["id"]
    assert event["id"] == h2["milepost-event-id"]
    assert verify_signature(secret, b2, h2["milepost-signature"]) > 0
    with pytest.raises(InvalidSignature):
        verify_signature(secret, b2 + b" ", h2["milepost-signature"])
    with pytest.raises(InvalidSignature):
        verify_signature("whsec_other", b2, h2["milepost-signature"])
    old = sign(secret, b2, int(time.time()) - 3600)
    with pytest.raises(InvalidSignature):
        verify_signature(secret, b2, old)

    page = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=operator.headers).json()
    (delivery,) = page["items"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]
    assert delivery["event_id"] == event["id"]

    # Milestone events are filtered out by the endpoint's event types; nothing is sent twice.
    client.post(f"/v1/orders/{order['id']}/accept", headers=seller.headers, json={"plan_version": 1})
    client.post(f"/v1/orders/{order['id']}/fund", headers=buyer.headers)
    result = sender.deliver_due(runtime)
    types = [json.loads(b)["type"] for _, b in receiver.requests[2:]]
    assert result.delivered == len(types) and set(types) <= {"order.agreed", "order.started", "order.active"}
    assert "order.agreed" in types
    assert sender.deliver_due(runtime).queued == 0


def test_unreachable_endpoint_records_the_error_and_backs_off(
    client: TestClient, parties: dict[str, Party], runtime: Runtime, clock: FixedClock
) -> None:
    operator = parties["operator"]
    dead = Receiver(fail_first=0)
    url = dead.url
    dead.close()  # nothing listens there any more
    hook_id = client.post("/v1/webhooks", headers=operator.headers, json={"url": url}).json()["id"]
    client.post("/v1/auth/register", json={"email": "x@example.com", "password": "long enough pw", "name": "X"})
    client.post("/v1/payouts", headers=parties["seller"].headers, json={"amount": 5000, "currency": "USD"})
    client.post("/v1/orders", headers=parties["buyer"].headers, json={
        "role": "buyer", "counterparty_email": parties["seller"].email, "title": "Logo", "currency": "USD",
        "milestones": milestones(10_000)})
    assert sender.deliver_due(runtime).failed_attempts == 1
    for attempt in range(1, 4):
        clock.advance(sender.backoff(attempt) + timedelta(seconds=1))
        sender.deliver_due(runtime)
    (delivery,) = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=operator.headers).json()["items"]
    assert delivery["status"] == "pending" and delivery["attempts"] == 4
    assert all(a["status_code"] is None and a["error"] for a in delivery["attempt_log"])
    assert sender.backoff(2) == 2 * sender.backoff(1) and sender.backoff(50) == sender.BACKOFF_CAP
