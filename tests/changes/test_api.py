"""HTTP: planning aids, change orders, extensions and reviews through the real app on both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from milepost.accounts import service as accounts
from milepost.app import create_app
from tests.factories import assert_invariants, get_order, make_order, make_user, plan


@pytest.fixture
def api(runtime):
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    stranger = make_user(runtime, email="stranger@example.com")
    with runtime.unit_of_work() as ctx:
        tokens = {u.email.split("@")[0]: accounts.issue_token(ctx, u) for u in (buyer, seller, stranger)}
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        yield client, {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}, buyer, seller


def test_plan_builder_endpoints(api):
    client, h, _, _ = api
    kinds = [t["kind"] for t in client.get("/v1/plans/templates", headers=h["buyer"]).json()["items"]]
    assert "website_pages" in kinds
    filled = client.get("/v1/plans/templates/video?total=100001&currency=USD", headers=h["buyer"]).json()
    assert sum(m["amount"] for m in filled["plan"]) == 100_001
    assert client.get("/v1/plans/templates/nope", headers=h["buyer"]).status_code == 404
    split = client.post("/v1/plans/split", headers=h["buyer"], json={"total": 100, "parts": 3, "currency": "USD"})
    assert split.json()["amounts"] == [34, 33, 33]
    assert client.post("/v1/plans/split", headers=h["buyer"],
                       json={"total": True, "parts": 3, "currency": "USD"}).status_code == 422
    lint = client.post("/v1/plans/lint", headers=h["buyer"], json={
        "counterparty_email": "seller@example.com", "currency": "USD",
        "milestones": [{"title": "All", "amount": 90_000, "due_days": 10},
                       {"title": "Rest", "amount": 10_000, "due_days": 10, "acceptance_criteria": ["ok"]}]})
    body = lint.json()
    assert {w["code"] for w in body["warnings"]} >= {"missing_acceptance_criteria", "concentrated_amount",
                                                     "first_milestone_too_large"}
    assert body["relationship"]["history"]["orders_total"] == 0
    assert body["recommendation"]["level"] == "new"
    assert client.post("/v1/plans/lint", headers=h["buyer"], json={
        "currency": "USD", "milestones": [{"title": "a\x00b"}]}).status_code == 422
    rel = client.get("/v1/relationships/seller@example.com", headers=h["buyer"])
    assert rel.status_code == 200 and rel.json()["recommendation"]["level"] == "new"
    assert client.get("/v1/relationships/nobody@example.com", headers=h["buyer"]).status_code == 404
    assert client.get("/v1/plans/templates").status_code == 401


def test_change_order_over_http(api, runtime):
    client, h, buyer, seller = api
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    r = client.post(f"/v1/orders/{order_id}/changes", headers=h["seller"], json={
        "reason": "Extra page", "add": plan(5_000), "update": [{"milestone_id": ms[2].id, "amount": 25_000}]})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["escrow_delta"] == 0
    assert client.post(f"/v1/changes/{cid}/accept", headers=h["stranger"]).status_code == 404
    assert client.post(f"/v1/changes/{cid}/accept", headers=h["seller"]).status_code == 409
    r = client.post(f"/v1/changes/{cid}/accept", headers=h["buyer"])
    assert r.status_code == 200 and r.json()["status"] == "accepted" and r.json()["resulting_plan_version"] == 2
    assert client.post(f"/v1/changes/{cid}/decline", headers=h["buyer"]).status_code == 409
    r = client.post(f"/v1/orders/{order_id}/changes", headers=h["buyer"], json={"reason": "x", "remove": [ms[1].id]})
    cid2 = r.json()["id"]
    assert client.post(f"/v1/changes/{cid2}/decline", headers=h["seller"], json={"note": "no"}).json()["status"] == "declined"
    assert client.post(f"/v1/orders/{order_id}/changes", headers=h["buyer"],
                       json={"reason": "x", "remove": [ms[0].id]}).status_code == 409
    assert client.post(f"/v1/orders/{order_id}/changes", headers=h["buyer"], json={"reason": ""}).status_code == 422
    order, after = get_order(runtime, order_id)
    assert order.total_amount == 60_000 and len(after) == 4
    assert_invariants(runtime)


def test_extension_and_review_over_http(api, runtime):
    client, h, buyer, seller = api
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    _, ms = get_order(runtime, order_id)
    url = f"/v1/orders/{order_id}/milestones/{ms[0].id}/extensions"
    assert client.post(url, headers=h["buyer"], json={"days": 2, "reason": "x"}).status_code == 403
    assert client.post(url, headers=h["seller"], json={"days": "2", "reason": "x"}).status_code == 422
    r = client.post(url, headers=h["seller"], json={"days": 2, "reason": "Waiting on copy"})
    assert r.status_code == 201
    xid = r.json()["id"]
    assert client.post(f"/v1/extensions/{xid}/accept", headers=h["stranger"]).status_code == 404
    assert client.post(f"/v1/extensions/{xid}/accept", headers=h["buyer"]).json()["status"] == "accepted"
    assert client.post(f"/v1/orders/{order_id}/cancel", headers=h["buyer"], json={"reason": "stop"}).status_code == 200
    review = {"rating": 3, "text": "Cancelled, but fair"}
    assert client.post(f"/v1/orders/{order_id}/reviews", headers=h["buyer"], json=review).status_code == 201
    assert client.post(f"/v1/orders/{order_id}/reviews", headers=h["buyer"], json=review).status_code == 409
    assert client.post(f"/v1/orders/{order_id}/reviews", headers=h["stranger"], json=review).status_code == 404
    assert client.post(f"/v1/orders/{order_id}/reviews", headers=h["seller"],
                       json={"rating": 6}).status_code == 422
    assert len(client.get(f"/v1/orders/{order_id}/reviews", headers=h["seller"]).json()["items"]) == 1
    rel = client.get("/v1/relationships/buyer@example.com", headers=h["seller"]).json()
    assert rel["history"]["orders_cancelled"] == 1 and rel["history"]["extensions_granted"] == 1
    assert rel["recommendation"]["level"] == "caution"
    assert_invariants(runtime)
