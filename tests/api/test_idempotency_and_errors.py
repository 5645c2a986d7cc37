"""Idempotency-Key, problem+json errors and strict input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from milepost.ledger.models import Transfer
from milepost.orders.models import Order
from milepost.runtime import Runtime
from tests.api.conftest import Party, milestones
from tests.factories import assert_invariants


def _proposal(counterparty: Party, **over: Any) -> dict[str, Any]:
    return {"role": "buyer", "counterparty_email": counterparty.email, "title": "Book", "currency": "USD",
            "milestones": milestones(10_000, 10_000), **over}


def _count(runtime: Runtime, model: Any) -> int:
    with runtime.reading() as ctx:
        return int(ctx.session.scalar(select(func.count()).select_from(model)) or 0)


def test_same_key_same_body_replays_the_stored_response(
    client: TestClient, parties: dict[str, Party], runtime: Runtime
) -> None:
    buyer, seller = parties["buyer"], parties["seller"]
    headers = {**buyer.headers, "Idempotency-Key": "order-1"}
    first = client.post("/v1/orders", headers=headers, json=_proposal(seller))
    second = client.post("/v1/orders", headers=headers, json=_proposal(seller))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert _count(runtime, Order) == 1

    other = client.post("/v1/orders", headers=headers, json=_proposal(seller, title="Other book"))
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    # Keys belong to the caller: the seller's identical key is a new request.
    mine = client.post("/v1/orders", headers={**seller.headers, "Idempotency-Key": "order-1"},
                       json=_proposal(buyer, role="seller"))
    assert mine.status_code == 201 and _count(runtime, Order) == 2


def test_failed_request_is_not_stored_and_may_be_retried(client: TestClient, parties: dict[str, Party]) -> None:
    buyer, seller = parties["buyer"], parties["seller"]
    order = client.post("/v1/orders", headers=buyer.headers, json=_proposal(seller)).json()
    headers = {**buyer.headers, "Idempotency-Key": "fund-early"}
    assert client.post(f"/v1/orders/{order['id']}/fund", headers=headers).status_code == 409
    client.post(f"/v1/orders/{order['id']}/accept", headers=seller.headers, json={"plan_version": 1})
    assert client.post(f"/v1/orders/{order['id']}/fund", headers=headers).status_code == 200


def test_concurrent_retries_move_money_once(client: TestClient, parties: dict[str, Party], runtime: Runtime) -> None:
    buyer, seller = parties["buyer"], parties["seller"]
    order = client.post("/v1/orders", headers=buyer.headers, json=_proposal(seller)).json()
    client.post(f"/v1/orders/{order['id']}/accept", headers=seller.headers, json={"plan_version": 1})
    transfers_before = _count(runtime, Transfer)
    headers = {**buyer.headers, "Idempotency-Key": "fund-race"}

    def fund(_: int) -> tuple[int, Any]:
        r = client.post(f"/v1/orders/{order['id']}/fund", headers=headers, json={})
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(fund, range(12)))
    assert {status for status, _ in results} == {200}, results
    assert len({repr(body) for _, body in results}) == 1
    assert _count(runtime, Transfer) == transfers_before + 2  # one fund transfer per milestone

    def propose(_: int) -> int:
        return client.post("/v1/orders", headers={**buyer.headers, "Idempotency-Key": "propose-race"},
                           json=_proposal(seller, title="Race")).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(propose, range(12))) == {201}
    with runtime.reading() as ctx:
        assert ctx.session.scalar(select(func.count()).where(Order.title == "Race")) == 1
    assert_invariants(runtime)


def test_invalid_input_lists_every_field_as_problem_json(client: TestClient, parties: dict[str, Party]) -> None:
    buyer = parties["buyer"]
    r = client.post("/v1/orders", headers=buyer.headers, json={
        "role": "boss", "counterparty_email": "x", "title": "a\x00b", "currency": "XXQ",
        "milestones": [{"title": "", "amount": False, "due_days": "3"}],
    })
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_input" and body["status"] == 422 and body["type"] and body["title"]
    fields = {e["field"] for e in body["errors"]}
    assert {"role", "title", "currency", "milestones[0].title", "milestones[0].amount",
            "milestones[0].due_days"} <= fields


def test_malformed_json_and_wrong_types_are_422_never_500(client: TestClient, parties: dict[str, Party]) -> None:
    h = {**parties["buyer"].headers, "Content-Type": "application/json"}
    assert client.post("/v1/orders", headers=h, content=b"{not json").status_code == 422
    assert client.post("/v1/payouts", headers=h, json={"amount": True, "currency": "USD"}).status_code == 422
    assert client.post("/v1/payouts", headers=h, json={"amount": 2**63, "currency": "USD"}).status_code == 422
    assert client.post("/v1/payouts", headers=h, json={"amount": 100, "currency": "usd"}).status_code == 422
    assert client.get("/v1/orders/" + "x" * 500, headers=h).status_code == 422
    assert client.get("/v1/orders/ord_missing", headers=h).status_code == 404
    assert client.get("/v1/orders", headers=h, params={"limit": 10**30}).status_code == 422


def test_upload_over_the_limit_is_413(client: TestClient, parties: dict[str, Party], runtime: Runtime) -> None:
    buyer, seller = parties["buyer"], parties["seller"]
    order = client.post("/v1/orders", headers=buyer.headers, json=_proposal(seller)).json()
    client.post(f"/v1/orders/{order['id']}/accept", headers=seller.headers, json={"plan_version": 1})
    order = client.post(f"/v1/orders/{order['id']}/fund", headers=buyer.headers).json()
    m1 = order["milestones"][0]["id"]
    runtime.settings.max_upload_bytes = 1000
    r = client.post(f"/v1/orders/{order['id']}/milestones/{m1}/deliveries", headers=seller.headers,
                    data={"message": "big"}, files=[("files", ("big.bin", b"x" * 5000, "application/octet-stream"))])
    assert r.status_code == 413 and r.json()["code"] == "upload_too_large"


def test_register_login_me_and_revoke(client: TestClient) -> None:
    r = client.post("/v1/auth/register", json={"email": "new@example.com", "password": "long enough pw",
                                               "name": "New"})
    assert r.status_code == 201
    token = r.json()["token"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == "new@example.com"
    dup = client.post("/v1/auth/register", json={"email": "new@example.com", "password": "long enough pw",
                                                 "name": "New"})
    assert dup.status_code == 409 and dup.json()["code"] == "email_taken"
    bad = client.post("/v1/auth/tokens", json={"email": "new@example.com", "password": "wrong password"})
    assert bad.status_code == 401 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.delete("/v1/auth/tokens/current", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/v1/me").status_code == 401


def test_dev_clock_is_404_when_disabled(client: TestClient, parties: dict[str, Party], runtime: Runtime) -> None:
    runtime.settings.dev_clock = False
    r = client.post("/v1/dev/clock", headers=parties["buyer"].headers, json={"advance": "P9D"})
    assert r.status_code == 404
    assert client.post("/v1/dev/clock", json={"advance": "P9D"}).status_code == 404
    runtime.settings.dev_clock = True
    bad = client.post("/v1/dev/clock", headers=parties["buyer"].headers, json={"advance": "P1Y"})
    assert bad.status_code == 422
