"""A bounded, retrying client workload and a local webhook receiver (127.0.0.1 only).

Each client thread runs the contract lifecycle over and over — create, accept, fund, deliver and
approve two milestones, now and then a payout — sending every POST with its own Idempotency-Key and
retrying the very same request (same key, same body) on a connection error or a 5xx, as a real
client would while servers restart. Every acknowledged (2xx) command is written down in `Ledger`
so a check afterwards can prove each is reflected exactly once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from milepost.webhooks.verify import InvalidSignature, verify_signature
from tests.reliability.harness import PASSWORD, Stack, milestones


@dataclass
class Ack:
    kind: str  # create | accept | fund | deliver | approve | payout
    key: str
    order_id: str | None = None
    milestone_id: str | None = None
    payout_id: str | None = None
    title: str | None = None
    replayed: bool = False


@dataclass
class Ledger:
    """What the clients were told succeeded, and how hard they had to try."""

    acks: list[Ack] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ack: Ack) -> None:
        with self.lock:
            self.acks.append(ack)


class GaveUp(Exception):
    pass


class Client:
    """One simulated user pair driving orders through whichever server URL is up."""

    def __init__(self, urls: list[str], ledger: Ledger, name: str, *, deadline: float,
                 stop: threading.Event | None = None) -> None:
        self.stop = stop
        self.stopped_at: float | None = None
        self.urls = urls
        self.ledger = ledger
        self.name = name
        self.deadline = deadline
        self.http = httpx.Client(timeout=20)
        self.rng = random.Random(name)
        self.n = 0

    def close(self) -> None:
        self.http.close()

    def send(self, path: str, body: Any, *, token: str | None, key: str,
             retry_until: float | None = None) -> httpx.Response:
        """POST with an Idempotency-Key, retrying the same request until a non-5xx answer."""
        headers = {"Idempotency-Key": key}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        give_up = retry_until or (self.deadline + 60)
        attempt = 0
        while True:
            url = self.urls[(hash(key) + attempt) % len(self.urls)]
            started = time.monotonic()
            try:
                r = self.http.post(url + path, json=body, headers=headers)
            except httpx.HTTPError:
                r = None
            with self.ledger.lock:
                self.ledger.requests += 1
                if attempt:
                    self.ledger.retries += 1
                if r is not None:
                    self.ledger.statuses[r.status_code] += 1
                    self.ledger.latencies_ms.append((time.monotonic() - started) * 1000)
            if r is not None and r.status_code < 500:
                return r
            attempt += 1
            if self.stop is not None and self.stop.is_set():
                # Once the run is over, a retry gets one more minute (a server may be restarting).
                self.stopped_at = self.stopped_at or time.monotonic()
                give_up = min(give_up, self.stopped_at + 60)
            if time.monotonic() > give_up:
                raise GaveUp(f"{path}: no answer after {attempt} attempts")
            time.sleep(min(0.1 * attempt, 1.0))

    def register(self, email: str) -> str:
        r = self.send("/v1/auth/register", {"email": email, "password": PASSWORD, "name": "Load"},
                      token=None, key=f"reg-{email}")
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def setup(self) -> None:
        self.buyer_email = f"{self.name}-buyer@example.com"
        self.seller_email = f"{self.name}-seller@example.com"
        self.buyer = self.register(self.buyer_email)
        self.seller = self.register(self.seller_email)

    def step(self, kind: str, path: str, body: Any, token: str, *, status: int = 200, **ack: Any) -> Any:
        key = f"{self.name}-{self.n}-{kind}-{ack.get('milestone_id') or ''}"[:200]
        r = self.send(path, body, token=token, key=key)
        if r.status_code != status:
            return None
        data = r.json()
        self.last_ack = Ack(kind=kind, key=key, replayed=r.headers.get("idempotent-replayed") == "true", **ack)
        self.ledger.add(self.last_ack)
        return data

    def one_order(self, *, terms: dict[str, Any]) -> None:
        self.n += 1
        title = f"{self.name} order {self.n}"
        order = self.step("create", "/v1/orders", {
            "role": "buyer", "counterparty_email": self.seller_email, "title": title, "currency": "USD",
            "terms": terms, "milestones": milestones(10_000, 5_000)}, self.buyer, status=201, title=title)
        if order is None:
            return
        oid = order["id"]
        self.last_ack.order_id = oid
        if self.step("accept", f"/v1/orders/{oid}/accept", {"plan_version": 1}, self.seller, order_id=oid) is None:
            return
        order = self.step("fund", f"/v1/orders/{oid}/fund", {}, self.buyer, order_id=oid)
        if order is None:
            return
        for m in order["milestones"]:
            mid = m["id"]
            if self.step("deliver", f"/v1/orders/{oid}/milestones/{mid}/deliveries", {"message": "done"},
                         self.seller, status=201, order_id=oid, milestone_id=mid) is None:
                return
            if m["seq"] == len(order["milestones"]) and self.rng.random() < 0.5:
                return  # leave the last delivery for the auto-approve timer
            if self.step("approve", f"/v1/orders/{oid}/milestones/{mid}/approve", None, self.buyer,
                         order_id=oid, milestone_id=mid) is None:
                return
        if self.n % 3 == 0:
            payout = self.step("payout", "/v1/payouts", {"amount": 1_000, "currency": "USD"}, self.seller,
                               status=201)
            if payout is not None:
                self.last_ack.payout_id = payout["id"]

    def run(self, *, terms: dict[str, Any], stop: threading.Event | None = None) -> None:
        while time.monotonic() < self.deadline and not (stop and stop.is_set()):
            self.one_order(terms=terms)


def run_clients(urls: list[str], *, clients: int, seconds: float, tag: str,
                terms: dict[str, Any] | None = None,
                stop: threading.Event | None = None) -> tuple[Ledger, list[BaseException]]:
    """Run `clients` threads for `seconds` (or until `stop` is set); each finishes its order."""
    ledger = Ledger()
    deadline = time.monotonic() + seconds
    errors: list[BaseException] = []
    terms = terms or {"clearance_days": 0, "review_days": 1}

    def run(i: int) -> None:
        client = Client(urls, ledger, f"{tag}-c{i}", deadline=deadline, stop=stop)
        try:
            client.setup()
            client.run(terms=terms, stop=stop)
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 240)
    return ledger, errors


def check_acknowledged(stack: Stack, ledger: Ledger) -> dict[str, int]:
    """Every acknowledged command is in the database exactly once; nothing is duplicated."""
    counts: Counter[str] = Counter(a.kind for a in ledger.acks)
    for ack in ledger.acks:
        if ack.kind == "create":
            assert ack.order_id is not None
            n = stack.scalar("SELECT count(*) FROM orders WHERE title = :t", t=ack.title)
            assert n == 1, f"order {ack.title!r}: {n} rows"
            assert stack.scalar("SELECT id FROM orders WHERE title = :t", t=ack.title) == ack.order_id
        elif ack.kind == "accept":
            assert stack.scalar("SELECT status FROM orders WHERE id = :o", o=ack.order_id) != "proposed"
        elif ack.kind == "fund":
            n = stack.scalar("SELECT count(*) FROM transfers WHERE order_id = :o AND kind = 'fund'", o=ack.order_id)
            assert n == 2, f"order {ack.order_id}: {n} fund transfers"
        elif ack.kind == "deliver":
            n = stack.scalar("SELECT count(*) FROM deliveries WHERE milestone_id = :m", m=ack.milestone_id)
            assert n == 1, f"milestone {ack.milestone_id}: {n} deliveries"
        elif ack.kind == "approve":
            status = stack.scalar("SELECT status FROM milestones WHERE id = :m", m=ack.milestone_id)
            assert status == "approved", (ack, status)
            n = stack.scalar("SELECT count(*) FROM transfers WHERE milestone_id = :m AND kind = 'release'",
                             m=ack.milestone_id)
            assert n == 1, f"milestone {ack.milestone_id}: {n} release transfers"
        elif ack.kind == "payout":
            assert stack.scalar("SELECT count(*) FROM payouts WHERE id = :p", p=ack.payout_id) == 1
            n = stack.scalar("SELECT count(*) FROM transfers WHERE payout_id = :p AND kind = 'payout'",
                             p=ack.payout_id)
            assert n == 1, f"payout {ack.payout_id}: {n} transfers"
    # Nothing happened that nobody was told about twice: one order per title, one release per milestone.
    assert stack.scalar("SELECT count(*) FROM (SELECT title FROM orders GROUP BY title HAVING count(*) > 1) d") == 0
    assert stack.scalar("SELECT count(*) FROM (SELECT milestone_id FROM transfers WHERE kind = 'release' "
                        "GROUP BY milestone_id HAVING count(*) > 1) d") == 0
    assert stack.scalar("SELECT count(*) FROM (SELECT milestone_id FROM deliveries "
                        "GROUP BY milestone_id HAVING count(*) > 1) d") == 0
    assert stack.scalar("SELECT count(*) FROM payouts") == counts["payout"]
    return dict(counts)


# ---------------------------------------------------------------------------------------------
# Webhook receiver
# ---------------------------------------------------------------------------------------------


class WebhookReceiver:
    """A 127.0.0.1 HTTP server that verifies signatures and counts each event id it receives."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: Counter[str] = Counter()
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    verify_signature(receiver.secret, body, self.headers.get("Milepost-Signature"))
                except InvalidSignature:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                event_id = json.loads(body)["id"]
                assert self.headers.get("Milepost-Event-Id") == event_id
                with receiver.lock:
                    receiver.received[event_id] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
