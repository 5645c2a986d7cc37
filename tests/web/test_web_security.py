"""The web app's guards, without a browser: CSRF, sign-in errors, strangers, operator-only pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from milepost.app import create_app
from milepost.runtime import Runtime
from tests.factories import PASSWORD, make_order, make_user

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def backend() -> str:
    # The rules under test are the web layer's; the services are covered on both databases elsewhere.
    return "sqlite"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url="http://127.0.0.1") as c:
        yield c


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    match = CSRF.search(page.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def log_in(client: TestClient, email: str) -> None:
    token = csrf_of(client, "/login")
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_post_without_csrf_token_is_rejected(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    answer = client.post("/login", data={"email": "ann@example.com", "password": PASSWORD})
    assert answer.status_code == 403
    assert "expired" in answer.text


def test_post_with_a_wrong_csrf_token_is_rejected(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    csrf_of(client, "/login")
    answer = client.post("/login", data={"email": "ann@example.com", "password": PASSWORD,
                                         "csrf_token": "forged-token-forged-token"})
    assert answer.status_code == 403


def test_csrf_applies_to_signed_in_actions(client: TestClient, runtime: Runtime) -> None:
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller, funded=False)
    log_in(client, "buyer@example.com")
    answer = client.post(f"/orders/{order_id}/fund", data={}, follow_redirects=False)
    assert answer.status_code == 403
    assert client.get(f"/orders/{order_id}").text.count("Pay ") >= 1  # still unfunded


def test_login_failure_says_what_went_wrong_and_keeps_the_email(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    token = csrf_of(client, "/login")
    answer = client.post("/login", data={"email": "ann@example.com", "password": "not the password",
                                         "csrf_token": token})
    assert answer.status_code == 401
    assert "Wrong e-mail address or password" in answer.text
    assert 'value="ann@example.com"' in answer.text


def test_session_cookie_is_httponly_and_samesite_lax(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    token = csrf_of(client, "/login")
    answer = client.post("/login", data={"email": "ann@example.com", "password": PASSWORD,
                                         "csrf_token": token}, follow_redirects=False)
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_stranger_gets_404_for_someone_elses_order(client: TestClient, runtime: Runtime) -> None:
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    make_user(runtime, email="eve@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    log_in(client, "eve@example.com")
    assert client.get(f"/orders/{order_id}").status_code == 404
    assert client.get("/orders/ord_does_not_exist").status_code == 404
    assert client.get(f"/orders/{order_id}/cancel").status_code == 404


def test_party_sees_the_order(client: TestClient, runtime: Runtime) -> None:
    buyer = make_user(runtime, email="buyer@example.com")
    seller = make_user(runtime, email="seller@example.com")
    order_id = make_order(runtime, buyer=buyer, seller=seller)
    log_in(client, "buyer@example.com")
    page = client.get(f"/orders/{order_id}")
    assert page.status_code == 200
    assert "Milestone 1" in page.text


def test_operator_page_is_forbidden_to_non_operators(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    log_in(client, "ann@example.com")
    assert client.get("/operator").status_code == 403


def test_operator_page_shows_the_audit_to_operators(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, email="op@example.com", operator=True)
    log_in(client, "op@example.com")
    page = client.get("/operator")
    assert page.status_code == 200
    assert "all invariants hold" in page.text


def test_pages_need_sign_in(client: TestClient) -> None:
    answer = client.get("/earnings", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/earnings")


def test_web_responses_carry_security_headers_and_api_does_not_get_web_pages(client: TestClient) -> None:
    page = client.get("/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    api = client.get("/v1/orders/ord_x")
    assert "text/html" not in api.headers.get("content-type", "")
    assert "set-cookie" not in api.headers


def test_plan_builder_keeps_input_and_shows_errors_next_to_fields(client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, email="seller@example.com")
    make_user(runtime, email="buyer@example.com")
    log_in(client, "seller@example.com")
    token = csrf_of(client, "/orders/new")
    answer = client.post("/orders/new", data={
        "csrf_token": token, "role": "seller", "counterparty_email": "buyer@example.com",
        "title": "Logo", "currency": "USD", "milestones[0].title": "Sketches",
        "milestones[0].amount": "1.00", "milestones[0].due_days": "5",
        "milestones[0].criteria": "three sketches",
    })
    assert answer.status_code == 422
    assert 'value="Sketches"' in answer.text
    assert 'id="milestones-0-amount-error"' in answer.text

