"""The whole app (API + web) over SQLite, with a buyer, a seller, a stranger and an operator.

`world` builds, through the API itself, one order in every shape the pages and forms need: a
delivered milestone with a file, an open dispute, a proposed change and a requested extension.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from milepost.app import create_app
from milepost.runtime import Runtime
from tests.factories import PASSWORD, make_user
from tests.orders.helpers import fast_password_hashing  # noqa: F401  (autouse fixture)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROLES = ("anonymous", "buyer", "seller", "stranger", "operator")


@pytest.fixture
def backend() -> str:
    # Authorization and web-layer rules; the services run on both databases elsewhere.
    return "sqlite"


@pytest.fixture
def settings(settings: Any) -> Any:
    settings.dev_clock = True
    return settings


@pytest.fixture
def app(runtime: Runtime) -> Any:
    return create_app(runtime)


def new_client(app: Any) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


def csrf_of(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    match = CSRF.search(page.text)
    assert match, f"no CSRF token on {path}: {page.status_code}"
    return match.group(1)


def web_login(client: TestClient, email: str) -> None:
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(client)},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


@dataclass
class World:
    ids: dict[str, str]
    tokens: dict[str, str]
    emails: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role != "anonymous" else {}


@pytest.fixture
def world(app: Any, runtime: Runtime) -> World:
    tokens, emails = {}, {}
    with new_client(app) as c:
        for role in ROLES[1:]:
            user = make_user(runtime, email=f"{role}@example.com", operator=role == "operator")
            r = c.post("/v1/auth/tokens", json={"email": user.email, "password": PASSWORD})
            tokens[role], emails[role] = r.json()["token"], user.email
        h = {role: {"Authorization": f"Bearer {t}"} for role, t in tokens.items()}

        def ok(r: Any, *codes: int) -> Any:
            assert r.status_code in (codes or (200, 201)), r.text
            return r.json()

        ms = [{"title": f"Part {i}", "description": "d", "acceptance_criteria": ["ok"], "amount": 10_000,
               "due_days": 5} for i in (1, 2, 3)]
        order = ok(c.post("/v1/orders", headers=h["buyer"], json={
            "role": "buyer", "counterparty_email": emails["seller"], "title": "Secure", "currency": "USD",
            "milestones": ms}), 201)
        oid = order["id"]
        ok(c.post(f"/v1/orders/{oid}/accept", headers=h["seller"], json={"plan_version": 1}))
        order = ok(c.post(f"/v1/orders/{oid}/fund", headers=h["buyer"], json={}))
        m1, m2 = order["milestones"][0]["id"], order["milestones"][1]["id"]
        ext = ok(c.post(f"/v1/orders/{oid}/milestones/{m1}/extensions", headers=h["seller"],
                        json={"days": 2, "reason": "busy"}), 201)
        delivered = ok(c.post(f"/v1/orders/{oid}/milestones/{m1}/deliveries", headers=h["seller"],
                              data={"message": "done"},
                              files=[("files", ("../../evil page.html", b"<script>alert(1)</script>", "text/html"))]),
                       201)
        file_id = delivered["deliveries"][0]["files"][0]["id"]
        dispute = ok(c.post(f"/v1/orders/{oid}/milestones/{m1}/disputes", headers=h["buyer"],
                            json={"reason": "no", "seller_amount": 1_000}), 201)
        change = ok(c.post(f"/v1/orders/{oid}/changes", headers=h["seller"], json={
            "reason": "one more", "add": [{"title": "Extra", "description": "d", "acceptance_criteria": ["ok"],
                                           "amount": 5_000, "due_days": 3}]}), 201)
        ids = {"order": oid, "m1": m1, "m2": m2, "file": file_id, "dispute": dispute["id"],
               "change": change["id"], "extension": ext["id"]}
    return World(ids=ids, tokens=tokens, emails=emails)


@pytest.fixture
def clients(app: Any, world: World) -> Iterator[dict[str, TestClient]]:
    """A signed-in web client per role (and an anonymous one that has a session and CSRF token)."""
    out = {}
    for role in ROLES:
        c = new_client(app)
        c.__enter__()
        if role == "anonymous":
            csrf_of(c)
        else:
            web_login(c, world.emails[role])
        out[role] = c
    try:
        yield out
    finally:
        for c in out.values():
            c.__exit__(None, None, None)
