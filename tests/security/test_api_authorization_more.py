"""The API routers outside tests/api/test_authorization.py's matrix — cash flow, change orders and
extensions, planning aids, reviews — × anonymous, buyer, seller, stranger, operator.

Same rules: 401 without a token (problem+json), 404 for anything about someone else's order, 403
for a party outside its role; allowed callers are never denied and never get a 5xx.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from milepost.cashflow.api import router as cashflow_router
from milepost.changes.api import router as changes_router
from milepost.planning.api import router as planning_router
from milepost.reviews.api import router as reviews_router
from tests.security.conftest import World, new_client

EVERYONE = {"buyer", "seller", "stranger", "operator"}
PARTIES = {"buyer", "seller"}


def matrix(ids: dict[str, str]) -> list[tuple[str, str, Any, set[str], dict[str, int]]]:
    o, m1, c, e = ids["order"], ids["m1"], ids["change"], ids["extension"]
    outsider = {"stranger": 404}
    party = {**outsider, "operator": 403}
    plan = {"currency": "USD", "milestones": [{"title": "A", "description": "a", "acceptance_criteria": ["a"],
                                               "amount": 10_000, "due_days": 5}]}
    return [
        ("GET", "/v1/balances", None, EVERYONE, {}),
        ("GET", "/v1/forecast", None, EVERYONE, {}),
        ("GET", "/v1/statements/payouts/pay_01ABCDEFGHJKMNPQRSTVWXYZ00", None, set(),
         {"buyer": 404, "seller": 404, "stranger": 404, "operator": 404}),
        ("GET", "/v1/statements/period?start=2026-01-01&end=2026-02-01", None, EVERYONE, {}),
        ("GET", "/v1/exports/journal?format=csv", None, EVERYONE, {}),
        ("GET", "/v1/exports/calendar.ics", None, EVERYONE, {}),
        ("GET", f"/v1/orders/{o}/changes", None, PARTIES | {"operator"}, outsider),
        ("GET", f"/v1/changes/{c}", None, PARTIES | {"operator"}, outsider),
        ("POST", f"/v1/orders/{o}/changes", {"reason": "x", "remove": []}, PARTIES, party),
        # The seller proposed the change: answering one's own proposal is a 409, like the plan's.
        ("POST", f"/v1/changes/{c}/decline", {}, {"buyer"}, {**party, "seller": 409}),
        ("POST", f"/v1/changes/{c}/accept", None, {"buyer"}, {**party, "seller": 409}),
        ("GET", f"/v1/orders/{o}/extensions", None, PARTIES | {"operator"}, outsider),
        ("POST", f"/v1/orders/{o}/milestones/{m1}/extensions", {"days": 1, "reason": "x"}, {"seller"},
         {**party, "buyer": 403}),
        ("POST", f"/v1/extensions/{e}/decline", {}, {"buyer"}, {**party, "seller": 403}),
        ("POST", f"/v1/extensions/{e}/accept", None, {"buyer"}, {**party, "seller": 403}),
        ("POST", f"/v1/orders/{o}/reviews", {"rating": 5, "text": "x"}, PARTIES, party),
        ("GET", f"/v1/orders/{o}/reviews", None, PARTIES | {"operator"}, outsider),
        ("POST", "/v1/plans/lint", plan, EVERYONE, {}),
        ("POST", "/v1/plans/split", {"total": 10_000, "count": 3, "currency": "USD"}, EVERYONE, {}),
        ("GET", "/v1/plans/templates", None, EVERYONE, {}),
        ("GET", "/v1/plans/templates/website_pages", None, EVERYONE, {}),
        # Your history with yourself does not exist: the seller asking about the seller is a 404.
        ("GET", "/v1/relationships/seller@example.com", None, EVERYONE - {"seller"}, {"seller": 404}),
    ]


def test_every_route_of_these_routers_is_in_the_matrix(world: World) -> None:
    names = {world.ids["order"]: "{order_id}", world.ids["m1"]: "{milestone_id}",
             world.ids["change"]: "{change_id}", world.ids["extension"]: "{extension_id}",
             "pay_01ABCDEFGHJKMNPQRSTVWXYZ00": "{payout_id}", "website_pages": "{kind}",
             "seller@example.com": "{email}"}
    covered = {(m, "/".join(names.get(p, p) for p in path.split("?")[0].split("/")))
               for m, path, *_ in matrix(world.ids)}
    routes = {(method, "/v1" + route.path)
              for r in (cashflow_router, changes_router, planning_router, reviews_router)
              for route in r.routes for method in route.methods}  # type: ignore[attr-defined]
    assert routes - covered == set(), sorted(routes - covered)


def test_every_route_against_every_role(app: Any, world: World) -> None:
    problems = []
    with new_client(app) as c:
        c: TestClient
        for method, path, body, allowed, denied in matrix(world.ids):
            r = c.request(method, path, json=body)
            if r.status_code != 401 or not r.headers["content-type"].startswith("application/problem+json"):
                problems.append((method, path, "anonymous", r.status_code))
            for role, status in denied.items():
                r = c.request(method, path, json=body, headers=world.headers(role))
                if r.status_code != status:
                    problems.append((method, path, role, r.status_code, status))
            assert set(denied) | allowed == EVERYONE, path
        for method, path, body, allowed, _ in matrix(world.ids):
            for role in sorted(allowed):
                r = c.request(method, path, json=body, headers=world.headers(role))
                if r.status_code in (401, 403, 404) or r.status_code >= 500:
                    problems.append((method, path, role, r.status_code, r.text[:200]))
    assert not problems, problems
