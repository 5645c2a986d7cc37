"""Every web page and every web form × anonymous, buyer, seller, stranger, operator; CSRF on every form.

The API's own matrix is tests/api/test_authorization.py; this is the web app's. Denials are exact:
anonymous → 303 to /login (and nothing happens), stranger → 404 for anything about someone else's
order (existence never leaks), a party or operator outside its role → 403 or 404. Allowed roles
are only checked not to be denied and never to get a 5xx; their request may still be refused for
the state it finds.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from milepost.runtime import Runtime
from milepost.web.views import router as web_router
from tests.factories import assert_invariants
from tests.security.conftest import ROLES, World

PARTIES = {"buyer", "seller"}
EVERYONE = {"buyer", "seller", "stranger", "operator"}
OUTSIDER = {"stranger": 404}


def pages(ids: dict[str, str]) -> list[tuple[str, set[str], dict[str, int]]]:
    o, m2 = ids["order"], ids["m2"]
    # Operators may read an order (they resolve its disputes) but act on nothing; delivery files stay
    # between the parties, as in the API.
    party = {**OUTSIDER, "operator": 403}
    return [
        ("/", EVERYONE, {}),
        ("/orders/new", EVERYONE, {}),
        (f"/orders/{o}", PARTIES | {"operator"}, OUTSIDER),
        (f"/orders/{o}/counter", PARTIES, party),
        (f"/orders/{o}/files/{ids['file']}", PARTIES, {**OUTSIDER, "operator": 404}),
        (f"/orders/{o}/cancel", PARTIES, party),
        (f"/orders/{o}/milestones/{m2}/dispute", PARTIES, party),
        (f"/orders/{o}/changes/new", PARTIES, party),
        ("/earnings", EVERYONE, {}),
        ("/earnings/export/csv", EVERYONE, {}),
        ("/operator", {"operator"}, {"buyer": 403, "seller": 403, "stranger": 403}),
        ("/logout", EVERYONE, {}),
    ]


def forms(ids: dict[str, str]) -> list[tuple[str, dict[str, str], set[str], dict[str, Any]]]:
    o, m2, d = ids["order"], ids["m2"], ids["dispute"]
    party = {**OUTSIDER, "operator": 403}
    return [
        ("/orders/new", {"role": "buyer", "counterparty_email": "seller@example.com", "title": "t",
                         "currency": "USD"}, EVERYONE, {}),
        # The counter form checks its input before the role: an operator's empty plan is a 422.
        (f"/orders/{o}/counter", {"note": "x"}, PARTIES, {**party, "operator": (403, 422)}),
        (f"/orders/{o}/accept", {"plan_version": "1"}, PARTIES, party),
        (f"/orders/{o}/fund", {}, {"buyer"}, {**party, "seller": 403}),
        (f"/orders/{o}/milestones/{m2}/deliver", {"message": "x"}, {"seller"}, {**party, "buyer": 403}),
        (f"/orders/{o}/milestones/{m2}/approve", {}, {"buyer"}, {**party, "seller": 403}),
        (f"/orders/{o}/milestones/{m2}/revision", {"reason": "x"}, {"buyer"}, {**party, "seller": 403}),
        (f"/orders/{o}/cancel", {"reason": "x"}, PARTIES, party),
        (f"/orders/{o}/milestones/{m2}/dispute", {"reason": "x", "seller_amount": "1.00"}, PARTIES, party),
        (f"/disputes/{d}/accept", {}, PARTIES, party),
        (f"/disputes/{d}/counter", {"seller_amount": "2.00"}, PARTIES, party),
        (f"/operator/disputes/{d}/resolve", {"seller_amount": "5.00"}, {"operator"},
         {"buyer": 403, "seller": 403, "stranger": 403}),
        (f"/orders/{o}/changes/new", {"reason": "x"}, PARTIES, party),
        (f"/changes/{ids['change']}/accept", {}, PARTIES, party),
        (f"/changes/{ids['change']}/decline", {}, PARTIES, party),
        (f"/orders/{o}/milestones/{m2}/extensions", {"days": "1", "reason": "x"}, {"seller"},
         {**party, "buyer": 403}),
        (f"/extensions/{ids['extension']}/accept", {}, {"buyer"}, {**party, "seller": 403}),
        (f"/extensions/{ids['extension']}/decline", {}, {"buyer"}, {**party, "seller": 403}),
        (f"/orders/{o}/reviews", {"rating": "5", "comment": "x"}, PARTIES, party),
        ("/earnings/payouts", {"amount": "10.00", "currency": "USD"}, EVERYONE, {}),
        ("/dev/clock", {"advance": "PT1M"}, EVERYONE, {}),
        ("/logout", {}, EVERYONE, {}),
    ]


def _csrf(client: TestClient) -> str:
    from tests.security.conftest import CSRF

    for path in ("/", "/login"):
        match = CSRF.search(client.get(path).text)
        if match:
            return match.group(1)
    raise AssertionError("no CSRF token on any page")


def _routes() -> set[tuple[str, str]]:
    def walk(routes: Any) -> Any:
        for r in routes:
            if hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)
            else:
                for m in r.methods:
                    yield m, r.path

    return set(walk(web_router.routes))


def _template(path: str, ids: dict[str, str]) -> str:
    names = {ids["order"]: "{order_id}", ids["m1"]: "{milestone_id}", ids["m2"]: "{milestone_id}",
             ids["file"]: "{file_id}", ids["dispute"]: "{dispute_id}", ids["change"]: "{change_id}",
             ids["extension"]: "{extension_id}", "csv": "{fmt}"}
    return "/".join(names.get(p, p) for p in path.split("/"))


def test_every_web_route_is_in_the_matrix(world: World) -> None:
    ids = world.ids
    covered = {("GET", _template(p, ids)) for p, *_ in pages(ids)}
    covered |= {("POST", _template(p, ids)) for p, *_ in forms(ids)}
    covered |= {("GET", "/login"), ("POST", "/login"), ("GET", "/register"), ("POST", "/register")}
    missing = _routes() - covered
    assert not missing, f"web routes missing from the matrix: {sorted(missing)}"


def test_every_page_against_every_role(clients: dict[str, TestClient], world: World) -> None:
    problems = []
    for path, allowed, denied in pages(world.ids):
        r = clients["anonymous"].get(path, follow_redirects=False)
        if path != "/logout" and not (r.status_code == 303 and r.headers["location"].startswith("/login")):
            problems.append((path, "anonymous", r.status_code))
        for role, status in denied.items():
            r = clients[role].get(path, follow_redirects=False)
            if r.status_code != status:
                problems.append((path, role, r.status_code, status))
        for role in allowed:
            r = clients[role].get(path, follow_redirects=False)
            # A page for an action the state does not allow redirects to the order (not to /login).
            redirected = r.status_code == 303 and not r.headers["location"].startswith("/login")
            if r.status_code != 200 and not redirected:
                problems.append((path, role, r.status_code, 200))
        assert set(denied) | allowed == EVERYONE, path
    assert not problems, problems


def test_every_form_against_every_role(clients: dict[str, TestClient], world: World, runtime: Runtime) -> None:
    problems = []
    for path, data, allowed, denied in forms(world.ids):
        if path == "/logout":
            continue  # signing out is harmless for anyone; done last below
        c = clients["anonymous"]
        r = c.post(path, data={**data, "csrf_token": _csrf(c)}, follow_redirects=False)
        if not (r.status_code == 303 and r.headers["location"].startswith("/login")):
            problems.append((path, "anonymous", r.status_code))
        for role, status in denied.items():
            c = clients[role]
            r = c.post(path, data={**data, "csrf_token": _csrf(c)}, follow_redirects=False)
            if r.status_code not in (status if isinstance(status, tuple) else (status,)):
                problems.append((path, role, r.status_code, status))
        assert set(denied) | allowed == EVERYONE, path
    assert not problems, problems
    for path, data, allowed, _ in forms(world.ids):
        for role in sorted(allowed):
            c = clients[role]
            r = c.post(path, data={**data, "csrf_token": _csrf(c)}, follow_redirects=False)
            if r.status_code in (401, 403, 404) or r.status_code >= 500:
                problems.append((path, role, r.status_code))
    assert not problems, problems
    assert_invariants(runtime)


def test_every_form_refuses_a_post_without_the_csrf_token(clients: dict[str, TestClient], world: World) -> None:
    problems = []
    for path, data, allowed, _ in forms(world.ids):
        for role in [*sorted(allowed)[:1], "anonymous"]:
            for token in (None, "forged-forged-forged-forged-forged"):
                body = dict(data) if token is None else {**data, "csrf_token": token}
                r = clients[role].post(path, data=body, follow_redirects=False)
                if r.status_code != 403:
                    problems.append((path, role, token, r.status_code))
    for path, data in (("/login", {"email": "buyer@example.com", "password": "x" * 12}),
                       ("/register", {"email": "new@example.com", "password": "x" * 12, "name": "N"})):
        r = clients["anonymous"].post(path, data=data, follow_redirects=False)
        if r.status_code != 403:
            problems.append((path, "anonymous", r.status_code))
    assert not problems, problems


FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def test_every_rendered_post_form_carries_a_csrf_token(clients: dict[str, TestClient], world: World) -> None:
    seen = 0
    for path, allowed, _ in pages(world.ids):
        for role in sorted(allowed):
            r = clients[role].get(path)
            if "text/html" not in r.headers.get("content-type", ""):
                continue
            for form in FORM.findall(r.text):
                if re.search(r'method="?post', form, re.I):
                    seen += 1
                    assert 'name="csrf_token"' in form, (path, role, form[:300])
    for path in ("/login", "/register"):
        for form in FORM.findall(clients["anonymous"].get(path).text):
            seen += 1
            assert 'name="csrf_token"' in form, (path, form[:300])
    assert seen >= 15


def test_roles_list() -> None:
    assert ROLES == ("anonymous", "buyer", "seller", "stranger", "operator")
