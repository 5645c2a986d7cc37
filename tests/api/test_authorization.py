"""Every endpoint × anonymous, buyer, seller, stranger, operator.

Denials are exact (401 without a token, 404 for strangers so an order's existence never leaks, 403
for a party or operator doing what their role may not). Allowed callers are only checked not to be
denied: their request may still be refused for the state it finds (409) or its input (422).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from milepost.runtime import Runtime
from tests.api.conftest import Party, milestones
from tests.factories import assert_invariants

ROLES = ("anonymous", "buyer", "seller", "stranger", "operator")
PARTIES = {"buyer", "seller"}
EVERYONE = {"buyer", "seller", "stranger", "operator"}


def _setup(client: TestClient, p: dict[str, Party]) -> dict[str, str]:
    buyer, seller = p["buyer"], p["seller"]
    ids = {}
    for name in ("a", "b"):
        order = client.post("/v1/orders", headers=buyer.headers, json={
            "role": "buyer", "counterparty_email": seller.email, "title": f"Order {name}", "currency": "USD",
            "milestones": milestones(10_000, 10_000)}).json()
        client.post(f"/v1/orders/{order['id']}/accept", headers=seller.headers, json={"plan_version": 1})
        order = client.post(f"/v1/orders/{order['id']}/fund", headers=buyer.headers).json()
        ids[name], ids[f"{name}_m1"] = order["id"], order["milestones"][0]["id"]
        r = client.post(f"/v1/orders/{order['id']}/milestones/{ids[f'{name}_m1']}/deliveries",
                        headers=seller.headers, data={"message": "done"}, files=[("files", ("a.txt", b"a"))])
        if name == "a":
            ids["file"] = r.json()["deliveries"][0]["files"][0]["id"]
    d = client.post(f"/v1/orders/{ids['b']}/milestones/{ids['b_m1']}/disputes", headers=buyer.headers,
                    json={"reason": "no", "seller_amount": 1}).json()
    ids["dispute"] = d["id"]
    hook = client.post("/v1/webhooks", headers=p["operator"].headers, json={"url": "http://127.0.0.1:9/x"})
    ids["webhook"] = hook.json()["id"]
    return ids


# (method, path, json body, allowed roles, status for each denied authenticated role)
def _matrix(ids: dict[str, str]) -> list[tuple[str, str, Any, set[str], dict[str, int]]]:
    a, m1, d = ids["a"], ids["a_m1"], ids["dispute"]
    order_scoped = {"stranger": 404}
    party_only = {"stranger": 404, "operator": 403}
    buyer_only = {"seller": 403, "stranger": 404, "operator": 403}
    seller_only = {"buyer": 403, "stranger": 404, "operator": 403}
    op_only = {"buyer": 403, "seller": 403, "stranger": 403}
    return [
        ("GET", "/v1/me", None, EVERYONE, {}),
        ("GET", "/v1/orders", None, EVERYONE, {}),
        ("GET", f"/v1/orders/{a}", None, PARTIES | {"operator"}, order_scoped),
        ("GET", f"/v1/orders/{a}/events", None, PARTIES | {"operator"}, order_scoped),
        ("GET", f"/v1/orders/{a}/files/{ids['file']}", None, PARTIES, {"stranger": 404, "operator": 404}),
        ("GET", f"/v1/disputes/{d}", None, PARTIES | {"operator"}, order_scoped),
        ("POST", f"/v1/orders/{a}/proposals", {"note": "x"}, PARTIES, party_only),
        ("POST", f"/v1/orders/{a}/accept", {"plan_version": 1}, PARTIES, party_only),
        ("POST", f"/v1/orders/{a}/fund", {}, {"buyer"}, buyer_only),
        ("POST", f"/v1/orders/{a}/milestones/{m1}/deliveries", {"message": "x"}, {"seller"}, seller_only),
        ("POST", f"/v1/orders/{a}/milestones/{m1}/revisions", {"reason": "x"}, {"buyer"}, buyer_only),
        ("POST", f"/v1/orders/{a}/milestones/{m1}/approve", None, {"buyer"}, buyer_only),
        ("POST", f"/v1/orders/{a}/milestones/{m1}/disputes", {"reason": "x", "seller_amount": 0}, PARTIES,
         party_only),
        ("POST", f"/v1/disputes/{d}/counter", {"seller_amount": 5}, PARTIES, party_only),
        ("POST", f"/v1/disputes/{d}/accept", None, PARTIES, party_only),
        ("POST", f"/v1/disputes/{d}/resolve", {"seller_amount": 5}, {"operator"},
         {"buyer": 403, "seller": 403, "stranger": 404}),
        ("POST", f"/v1/orders/{a}/cancel", {"reason": "x"}, PARTIES, party_only),
        ("POST", "/v1/orders", {"role": "buyer", "counterparty_email": "seller@example.com", "title": "t",
                                "currency": "USD", "milestones": milestones(1000)}, EVERYONE, {}),
        ("POST", "/v1/payouts", {"amount": 1000, "currency": "USD"}, EVERYONE, {}),
        ("GET", "/v1/payouts", None, EVERYONE, {}),
        ("GET", "/v1/ledger/entries", None, EVERYONE, {}),
        ("GET", "/v1/admin/audit", None, {"operator"}, op_only),
        ("GET", "/v1/webhooks", None, {"operator"}, op_only),
        ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/y"}, {"operator"}, op_only),
        ("GET", f"/v1/webhooks/{ids['webhook']}/deliveries", None, {"operator"}, op_only),
        ("POST", "/v1/dev/clock", {"advance": "PT1M"}, EVERYONE, {}),
        ("DELETE", "/v1/auth/tokens/current", None, set(), {}),
    ]


def test_every_endpoint_against_every_role(client: TestClient, parties: dict[str, Party], runtime: Runtime) -> None:
    ids = _setup(client, parties)
    matrix = _matrix(ids)
    paths = {(m, p.split("/v1", 1)[1]) for m, p, *_ in matrix}
    assert len(paths) == len(matrix)

    def call(method: str, path: str, body: Any, role: str) -> Any:
        headers = parties[role].headers if role != "anonymous" else {}
        return client.request(method, path, headers=headers, json=body)

    # Denials first, while the state is as set up; then the allowed callers.
    for method, path, body, allowed, denied in matrix:
        r = call(method, path, body, "anonymous")
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        for role, status in denied.items():
            r = call(method, path, body, role)
            assert r.status_code == status, (method, path, role, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        assert set(denied) | allowed == EVERYONE or method == "DELETE", (method, path)
    for method, path, body, allowed, _ in matrix:
        for role in sorted(allowed):
            r = call(method, path, body, role)
            assert r.status_code not in (401, 403, 404), (method, path, role, r.text)
            assert r.status_code < 500
    assert_invariants(runtime)


def test_every_api_route_is_in_the_matrix() -> None:
    from milepost.api import admin, auth, dev, disputes, money, orders

    ids = {k: "x" for k in ("a", "a_m1", "dispute", "file", "webhook")}
    covered = {(m, _template(p)) for m, p, *_ in _matrix(ids)} | {("POST", "/v1/auth/register"),
                                                                  ("POST", "/v1/auth/tokens")}
    routes = {(method, "/v1" + route.path)
              for module in (admin, auth, dev, disputes, money, orders)
              for route in module.router.routes for method in route.methods}  # type: ignore[attr-defined]
    missing = routes - covered
    assert not missing, f"routes missing from the authorization matrix: {sorted(missing)}"


def _template(path: str) -> str:
    names = {"orders": "order_id", "milestones": "milestone_id", "disputes": "dispute_id", "files": "file_id",
             "webhooks": "webhook_id"}
    parts = path.split("/")
    out = []
    for i, part in enumerate(parts):
        out.append("{" + names[parts[i - 1]] + "}" if part == "x" else part)
    return "/".join(out)
