"""The whole contract lifecycle through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from milepost.runtime import Runtime
from tests.api.conftest import Party, milestones
from tests.factories import assert_invariants


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def ms(order: dict[str, Any], seq: int) -> dict[str, Any]:
    return order["milestones"][seq - 1]


def test_lifecycle_propose_to_payout(client: TestClient, parties: dict[str, Party], runtime: Runtime) -> None:
    buyer, seller, stranger = parties["buyer"], parties["seller"], parties["stranger"]

    # Seller proposes; buyer counters with a fourth page; seller accepts version 2.
    order = ok(client.post("/v1/orders", headers=seller.headers, json={
        "role": "seller", "counterparty_email": buyer.email, "title": "12-page website", "brief": "Pages",
        "currency": "USD",
        "terms": {"review_days": 3, "clearance_days": 2, "kill_fee_bps": 2000, "revisions": 1},
        "milestones": milestones(10_000, 20_000, 30_000),
    }), 201)
    oid = order["id"]
    assert order["status"] == "proposed" and order["plan_version"] == 1
    assert order["proposed_by"] == seller.id and order["total_amount"] == 60_000
    assert order["terms"]["kill_fee_bps"] == 2000 and order["terms"]["seller_fee_bps"] == 1000
    assert set(ms(order, 1)) >= {"id", "seq", "title", "description", "acceptance_criteria", "amount",
                                 "due_days", "status", "revisions_allowed", "revisions_used", "started_at",
                                 "due_at", "delivered_at", "review_due_at", "approved_at"}

    own = client.post(f"/v1/orders/{oid}/accept", headers=seller.headers, json={"plan_version": 1})
    assert own.status_code == 409 and own.json()["code"] == "own_proposal"

    order = ok(client.post(f"/v1/orders/{oid}/proposals", headers=buyer.headers, json={
        "milestones": milestones(10_000, 20_000, 30_000, 40_000, revisions=1), "note": "add a page",
    }), 201)
    assert order["plan_version"] == 2 and order["total_amount"] == 100_000
    stale = client.post(f"/v1/orders/{oid}/accept", headers=seller.headers, json={"plan_version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == "stale_plan_version"
    order = ok(client.post(f"/v1/orders/{oid}/accept", headers=seller.headers, json={"plan_version": 2}))
    assert order["status"] == "agreed"

    # Buyer funds the whole order (upfront); the first milestone starts.
    order = ok(client.post(f"/v1/orders/{oid}/fund", headers=buyer.headers, json={}))
    assert order["status"] == "active"
    m1, m2 = ms(order, 1)["id"], ms(order, 2)["id"]
    assert ms(order, 1)["status"] == "in_progress" and ms(order, 1)["due_at"]

    # Deliver with a file (multipart), ask for a revision, deliver again (JSON), approve.
    r = client.post(f"/v1/orders/{oid}/milestones/{m1}/deliveries", headers=seller.headers,
                    data={"message": "Home page v1"},
                    files=[("files", ("../../etc/home page.html", b"<h1>home</h1>", "text/html"))])
    order = ok(r, 201)
    assert ms(order, 1)["status"] == "delivered" and ms(order, 1)["review_due_at"]
    file_info = order["deliveries"][0]["files"][0]
    assert file_info["filename"] == "home page.html"

    order = ok(client.post(f"/v1/orders/{oid}/milestones/{m1}/revisions", headers=buyer.headers,
                           json={"reason": "logo too small"}))
    assert ms(order, 1)["status"] == "in_progress" and ms(order, 1)["revisions_used"] == 1
    capped = None
    ok(client.post(f"/v1/orders/{oid}/milestones/{m1}/deliveries", headers=seller.headers,
                   json={"message": "Home page v2"}), 201)
    capped = client.post(f"/v1/orders/{oid}/milestones/{m1}/revisions", headers=buyer.headers,
                         json={"reason": "again"})
    assert capped.status_code == 409
    assert capped.headers["content-type"].startswith("application/problem+json")
    assert "approve" in capped.json()["detail"]
    order = ok(client.post(f"/v1/orders/{oid}/milestones/{m1}/approve", headers=buyer.headers))
    assert ms(order, 1)["status"] == "approved" and ms(order, 1)["approved_at"]
    assert ms(order, 2)["status"] == "in_progress"

    # Files: the parties download as an attachment; others get 404.
    url = file_info["url"]
    got = client.get(url, headers=buyer.headers)
    assert got.status_code == 200 and got.content == b"<h1>home</h1>"
    assert got.headers["content-disposition"] == 'attachment; filename="home page.html"'
    assert client.get(url, headers=stranger.headers).status_code == 404
    assert client.get(url, headers=parties["operator"].headers).status_code == 404

    # Milestone 2: delivered, then the review window passes → auto-approved by the dev clock.
    ok(client.post(f"/v1/orders/{oid}/milestones/{m2}/deliveries", headers=seller.headers,
                   json={"message": "About page"}), 201)
    clock = ok(client.post("/v1/dev/clock", headers=seller.headers, json={"advance": "P3DT1H"}))
    assert clock["timers_fired"] >= 1
    order = ok(client.get(f"/v1/orders/{oid}", headers=seller.headers))
    assert ms(order, 2)["status"] == "approved" and ms(order, 3)["status"] == "in_progress"

    # Clearance (2 days) makes both releases available.
    ok(client.post("/v1/dev/clock", headers=seller.headers, json={"advance": "PT49H"}))
    entries = ok(client.get("/v1/ledger/entries", headers=seller.headers))["items"]
    available = sum(e["amount"] for e in entries if e["account"].endswith(":available"))
    assert available == 9_000 + 18_000
    assert {e["kind"] for e in entries} >= {"release", "clear"}

    # Buyer cancels the rest: 20 % kill fee on milestone 3 (in progress, not late), milestone 4 refunded.
    order = ok(client.post(f"/v1/orders/{oid}/cancel", headers=buyer.headers, json={"reason": "budget cut"}))
    assert ms(order, 3)["status"] == "cancelled" and ms(order, 3)["released_amount"] == 6_000
    assert ms(order, 4)["status"] == "cancelled" and ms(order, 4)["refunded_amount"] == 40_000
    assert order["status"] in ("completed", "cancelled")
    assert client.get(f"/v1/orders/{oid}", headers=stranger.headers).status_code == 404

    # Payout of everything available; more than that is refused.
    payout = ok(client.post("/v1/payouts", headers=seller.headers, json={"amount": 27_000, "currency": "USD"}), 201)
    assert payout["amount"] == 27_000 and payout["currency"] == "USD"
    again = client.post("/v1/payouts", headers=seller.headers, json={"amount": 5_000, "currency": "USD"})
    assert again.status_code in (409, 422)
    listed = ok(client.get("/v1/payouts", headers=seller.headers))
    assert [p["id"] for p in listed["items"]] == [payout["id"]] and listed["next_cursor"] is None

    events = ok(client.get(f"/v1/orders/{oid}/events", headers=buyer.headers))["items"]
    types = [e["type"] for e in events]
    for expected in ("order.proposed", "order.countered", "order.agreed", "milestone.funded",
                     "milestone.delivered", "milestone.revision_requested", "milestone.approved",
                     "milestone.cancelled"):
        assert expected in types
    mine = ok(client.get("/v1/orders", headers=buyer.headers, params={"role": "buyer"}))
    assert [o["id"] for o in mine["items"]] == [oid]
    assert ok(client.get("/v1/orders", headers=buyer.headers, params={"role": "seller"}))["items"] == []
    audit = ok(client.get("/v1/admin/audit", headers=parties["operator"].headers))
    assert audit["ok"] is True and audit["checks"]
    assert_invariants(runtime)


def _active_order(client: TestClient, buyer: Party, seller: Party, amounts: tuple[int, ...]) -> dict[str, Any]:
    order = ok(client.post("/v1/orders", headers=buyer.headers, json={
        "role": "buyer", "counterparty_email": seller.email, "title": "8 illustrations", "currency": "EUR",
        "milestones": milestones(*amounts),
    }), 201)
    ok(client.post(f"/v1/orders/{order['id']}/accept", headers=seller.headers, json={"plan_version": 1}))
    return ok(client.post(f"/v1/orders/{order['id']}/fund", headers=buyer.headers))


def test_disputes_by_agreement_and_by_operator(
    client: TestClient, parties: dict[str, Party], runtime: Runtime
) -> None:
    buyer, seller, operator = parties["buyer"], parties["seller"], parties["operator"]
    order = _active_order(client, buyer, seller, (10_000, 10_000))
    oid, m1, m2 = order["id"], ms(order, 1)["id"], ms(order, 2)["id"]

    ok(client.post(f"/v1/orders/{oid}/milestones/{m1}/deliveries", headers=seller.headers,
                   json={"message": "sketches"}), 201)
    dispute = ok(client.post(f"/v1/orders/{oid}/milestones/{m1}/disputes", headers=buyer.headers,
                             json={"reason": "off brief", "seller_amount": 3_000}), 201)
    assert dispute["status"] == "open" and dispute["milestone_id"] == m1
    assert client.post(f"/v1/disputes/{dispute['id']}/accept", headers=buyer.headers).status_code == 409
    dispute = ok(client.post(f"/v1/disputes/{dispute['id']}/counter", headers=seller.headers,
                             json={"seller_amount": 8_000}))
    assert [p["seller_amount"] for p in dispute["proposals"]] == [3_000, 8_000]
    dispute = ok(client.post(f"/v1/disputes/{dispute['id']}/accept", headers=buyer.headers))
    assert dispute["status"] == "resolved" and dispute["resolved_seller_amount"] == 8_000
    order = ok(client.get(f"/v1/orders/{oid}", headers=buyer.headers))
    assert ms(order, 1)["status"] == "resolved" and ms(order, 1)["released_amount"] == 8_000
    assert ms(order, 1)["refunded_amount"] == 2_000 and order["disputes"][0]["id"] == dispute["id"]
    assert ms(order, 2)["status"] == "in_progress"

    # Second milestone: the seller disputes, the buyer counters, the operator decides.
    d2 = ok(client.post(f"/v1/orders/{oid}/milestones/{m2}/disputes", headers=seller.headers,
                        json={"reason": "buyer silent", "seller_amount": 10_000}), 201)
    ok(client.post(f"/v1/disputes/{d2['id']}/counter", headers=buyer.headers, json={"seller_amount": 0}))
    forbidden = client.post(f"/v1/disputes/{d2['id']}/resolve", headers=buyer.headers, json={"seller_amount": 1})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "operator_only"
    hidden = client.post(f"/v1/disputes/{d2['id']}/resolve", headers=parties["stranger"].headers,
                         json={"seller_amount": 1})
    assert hidden.status_code == 404
    d2 = ok(client.post(f"/v1/disputes/{d2['id']}/resolve", headers=operator.headers,
                        json={"seller_amount": 5_000, "note": "split"}))
    assert d2["status"] == "resolved" and d2["resolved_how"] == "operator"
    order = ok(client.get(f"/v1/orders/{oid}", headers=operator.headers))
    assert order["status"] == "completed"
    assert_invariants(runtime)
