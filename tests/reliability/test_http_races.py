"""Conflicting commands fired at the same moment at a real `milepost serve` on PostgreSQL.

Each race runs ROUNDS times on fresh orders: exactly one effect, no 5xx, and `milepost audit` (a
subprocess against the same database) finds every invariant intact at the end.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import need_pg
from tests.reliability.harness import Api, Stack, assert_audit_clean

ROUNDS = 2
_ids = itertools.count()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    cluster = need_pg(request.getfixturevalue("pg_cluster"))
    s = Stack(Path(tmp_path_factory.mktemp("races")), "postgres", cluster)
    try:
        s.start_server()
        yield s
        assert_audit_clean(s)
    finally:
        s.close()


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[Api]:
    a = Api(stack.procs[0].url)
    yield a
    a.close()


STATUSES: Counter[int] = Counter()


def race(base_url: str, calls: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    """Fire the calls at the same moment, each on its own connection; no answer may be a 5xx."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            client.get("/healthz")  # open the connection before the barrier
            barrier.wait()
            try:
                answers[i] = calls[i](client)
            except Exception as exc:
                answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    broken = [a for a in answers if not isinstance(a, httpx.Response) or a.status_code >= 500]
    assert not broken, [a.text if isinstance(a, httpx.Response) else repr(a) for a in broken]
    STATUSES.update(a.status_code for a in answers)
    return answers


def post(path: str, token: str, body: Any = None, key: str | None = None) -> Callable[[httpx.Client], httpx.Response]:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    return lambda c: c.post(path, json=body, headers=headers)


@pytest.fixture
def people(api: Api) -> dict[str, str]:
    n = next(_ids)
    return {"buyer": api.register(f"race-buyer-{n}@example.com"),
            "seller": api.register(f"race-seller-{n}@example.com"),
            "seller_email": f"race-seller-{n}@example.com"}


def transfers(stack: Stack, order_id: str) -> Counter[str]:
    return Counter(dict(stack.query("SELECT kind, count(*) FROM transfers WHERE order_id = :o GROUP BY kind",
                                    o=order_id)))


def ok_count(answers: list[httpx.Response]) -> int:
    return sum(1 for a in answers if a.status_code < 300)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_sixteen_approvals_of_one_delivery(stack: Stack, api: Api, people: dict[str, str], round_: int) -> None:
    order = api.order(people["buyer"], people["seller_email"], [10_000, 10_000], seller=people["seller"])
    oid, mid = order["id"], order["milestones"][0]["id"]
    api.ok(api.deliver(people["seller"], oid, mid), 201)
    answers = race(stack.procs[0].url,
                   [post(f"/v1/orders/{oid}/milestones/{mid}/approve", people["buyer"])] * 16)
    assert ok_count(answers) == 1
    assert {a.status_code for a in answers} <= {200, 409}
    assert transfers(stack, oid)["release"] == 1
    assert api.get_order(people["buyer"], oid)["milestones"][0]["status"] == "approved"


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_approve_versus_cancel(stack: Stack, api: Api, people: dict[str, str], round_: int) -> None:
    order = api.order(people["buyer"], people["seller_email"], [10_000, 10_000], seller=people["seller"])
    oid, mid = order["id"], order["milestones"][0]["id"]
    api.ok(api.deliver(people["seller"], oid, mid), 201)
    approve, cancel = race(stack.procs[0].url, [
        post(f"/v1/orders/{oid}/milestones/{mid}/approve", people["buyer"]),
        post(f"/v1/orders/{oid}/cancel", people["seller"], {"reason": "stop"}),
    ])
    # A cancel that lands first is refused (a delivery awaits review); one that lands second
    # cancels the rest. Either way the delivered milestone is paid exactly once.
    assert approve.status_code == 200, approve.text
    assert cancel.status_code in (200, 409), cancel.text
    final = api.get_order(people["buyer"], oid)
    assert final["milestones"][0]["status"] == "approved"
    assert transfers(stack, oid)["release"] == 1
    if cancel.status_code == 200:
        assert final["status"] in ("completed", "cancelled")
        assert final["milestones"][1]["status"] == "cancelled"
        assert transfers(stack, oid)["refund"] >= 1


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_fund_twice(stack: Stack, api: Api, people: dict[str, str], round_: int) -> None:
    order = api.order(people["buyer"], people["seller_email"], [10_000, 20_000], seller=people["seller"],
                      fund=False)
    oid = order["id"]
    answers = race(stack.procs[0].url, [post(f"/v1/orders/{oid}/fund", people["buyer"], {})] * 4)
    assert ok_count(answers) == 1
    assert transfers(stack, oid)["fund"] == 2  # one per milestone, once
    funded = stack.scalar("SELECT -sum(p.amount) FROM postings p JOIN transfers t ON t.id = p.transfer_id "
                          "WHERE t.order_id = :o AND t.kind = 'fund' AND p.account LIKE 'world:%'", o=oid)
    assert funded == 30_000


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_payouts_of_the_whole_available_balance(stack: Stack, api: Api, people: dict[str, str],
                                                    round_: int) -> None:
    order = api.order(people["buyer"], people["seller_email"], [10_000], seller=people["seller"],
                      terms={"clearance_days": 0})
    oid, mid = order["id"], order["milestones"][0]["id"]
    api.ok(api.deliver(people["seller"], oid, mid), 201)
    api.ok(api.approve(people["buyer"], oid, mid))
    api.ok(api.post("/v1/dev/clock", people["seller"], {"advance": "PT1S"}))  # runs the clearance timer
    balances = api.ok(api.get("/v1/balances", people["seller"]))["balances"]
    available = next(b["available"] for b in balances if b["currency"] == "USD")
    assert available == 9_000
    answers = race(stack.procs[0].url,
                   [post("/v1/payouts", people["seller"], {"amount": available, "currency": "USD"})] * 2)
    assert ok_count(answers) == 1
    balances = api.ok(api.get("/v1/balances", people["seller"]))["balances"]
    assert next(b["available"] for b in balances if b["currency"] == "USD") == 0
    assert len(api.ok(api.get("/v1/payouts", people["seller"]))["items"]) == 1


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_dispute_races_the_auto_approve_timer(stack: Stack, api: Api, people: dict[str, str], round_: int) -> None:
    order = api.order(people["buyer"], people["seller_email"], [10_000, 10_000], seller=people["seller"],
                      terms={"review_days": 1})
    oid, mid = order["id"], order["milestones"][0]["id"]
    delivered = api.ok(api.deliver(people["seller"], oid, mid), 201)
    assert delivered["milestones"][0]["review_due_at"]
    # Bring the review deadline within a second, then advance past it while the buyer disputes.
    api.ok(api.post("/v1/dev/clock", people["buyer"], {"advance": "PT23H59M59S"}))
    clock, dispute = race(stack.procs[0].url, [
        post("/v1/dev/clock", people["buyer"], {"advance": "PT2S"}),
        post(f"/v1/orders/{oid}/milestones/{mid}/disputes", people["buyer"],
             {"reason": "not what we agreed", "seller_amount": 2_000}),
    ])
    assert clock.status_code == 200, clock.text
    status = api.get_order(people["buyer"], oid)["milestones"][0]["status"]
    kinds = transfers(stack, oid)
    if dispute.status_code == 201:
        assert status == "disputed" and kinds["release"] == 0  # the timer found a state it left
    else:
        assert dispute.status_code == 409, dispute.text
        assert status == "approved" and kinds["release"] == 1
    assert stack.scalar("SELECT count(*) FROM timers WHERE milestone_id = :m AND kind = 'auto_approve' "
                        "AND fired_at IS NOT NULL", m=mid) <= 1


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_same_idempotency_key_in_parallel(stack: Stack, api: Api, people: dict[str, str], round_: int) -> None:
    key = f"create-order-{round_}-{next(_ids)}"
    title = f"Idempotent {key}"
    body = {"role": "buyer", "counterparty_email": people["seller_email"], "title": title, "currency": "USD",
            "milestones": [{"title": "A", "description": "a", "acceptance_criteria": ["a"], "amount": 10_000,
                            "due_days": 5}]}
    answers = race(stack.procs[0].url, [post("/v1/orders", people["buyer"], body, key=key)] * 8)
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert stack.scalar("SELECT count(*) FROM orders WHERE title = :t", t=title) == 1
    # The same key with another body is refused, not replayed.
    other = api.post("/v1/orders", people["buyer"], {**body, "title": title + "!"}, key=key)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    # Parallel approvals carrying one key: one effect, every answer the same 200.
    order = api.order(people["buyer"], people["seller_email"], [10_000], seller=people["seller"])
    oid, mid = order["id"], order["milestones"][0]["id"]
    api.ok(api.deliver(people["seller"], oid, mid), 201)
    answers = race(stack.procs[0].url,
                   [post(f"/v1/orders/{oid}/milestones/{mid}/approve", people["buyer"], key=f"ap-{key}")] * 8)
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    assert transfers(stack, oid)["release"] == 1


def test_zz_audit_is_clean_after_all_races(stack: Stack) -> None:
    report = assert_audit_clean(stack)
    assert report["transfers"] > 0
