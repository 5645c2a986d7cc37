"""Security rules other than the role matrix: cookies, throttling, passwords, tokens, uploads,
headers, the dev clock, webhook signatures — in-process (see test_live_server.py for the rest)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from milepost.accounts import throttle as throttle_mod
from milepost.app import create_app
from milepost.config import Settings
from milepost.runtime import Runtime
from milepost.webhooks.verify import InvalidSignature, sign, verify_signature
from tests.factories import PASSWORD, make_user
from tests.security.conftest import World, csrf_of, new_client


def test_session_cookie_is_httponly_lax_and_secure_over_https(app: Any, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    for base, secure in (("http://127.0.0.1", False), ("https://127.0.0.1", True)):
        with TestClient(app, base_url=base) as c:
            r = c.post("/login", data={"email": "ann@example.com", "password": PASSWORD,
                                       "csrf_token": csrf_of(c)}, follow_redirects=False)
            assert r.status_code == 303
            cookie = r.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=lax" in cookie
            assert ("secure" in cookie.split(";")[-1] or "; secure" in cookie) is secure, cookie


def test_api_login_is_throttled_per_email_and_address(app: Any, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    make_user(runtime, email="bob@example.com")
    with new_client(app) as c:
        for _ in range(throttle_mod.PER_ACCOUNT_AND_IP):
            r = c.post("/v1/auth/tokens", json={"email": "ann@example.com", "password": "wrong password!"})
            assert r.status_code == 401
        blocked = c.post("/v1/auth/tokens", json={"email": "ann@example.com", "password": PASSWORD})
        assert blocked.status_code == 429, blocked.text  # even the right password, until the window passes
        assert blocked.headers["content-type"].startswith("application/problem+json")
        assert blocked.json()["code"] == "too_many_attempts"
        assert 0 < int(blocked.headers["retry-after"]) <= throttle_mod.WINDOW_SECONDS + 1
        # Another account from the same address is not locked out by ann's failures.
        assert c.post("/v1/auth/tokens", json={"email": "bob@example.com", "password": PASSWORD}).status_code == 201


def test_api_login_is_throttled_per_address_across_emails(app: Any, runtime: Runtime,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_mod, "PER_IP", 8)
    make_user(runtime, email="ann@example.com")
    with new_client(app) as c:
        for i in range(8):
            r = c.post("/v1/auth/tokens", json={"email": f"guess{i}@example.com", "password": "wrong password!"})
            assert r.status_code == 401
        r = c.post("/v1/auth/tokens", json={"email": "ann@example.com", "password": PASSWORD})
        assert r.status_code == 429


def test_throttle_forgets_after_the_window_and_on_success() -> None:
    now = [1000.0]
    t = throttle_mod.LoginThrottle(clock=lambda: now[0])
    for _ in range(throttle_mod.PER_ACCOUNT_AND_IP):
        t.failed("Ann@Example.com", "10.0.0.1")
    with pytest.raises(throttle_mod.TooManyAttempts):
        t.check("ann@example.com", "10.0.0.1")
    t.check("ann@example.com", "10.0.0.2")  # another address is not blocked
    now[0] += throttle_mod.WINDOW_SECONDS + 1
    t.check("ann@example.com", "10.0.0.1")
    t.failed("ann@example.com", "10.0.0.1")
    t.succeeded("ann@example.com", "10.0.0.1")
    assert ("ann@example.com", "10.0.0.1") not in t._failures


def test_web_login_is_throttled(app: Any, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    with new_client(app) as c:
        for _ in range(throttle_mod.PER_ACCOUNT_AND_IP):
            r = c.post("/login", data={"email": "ann@example.com", "password": "wrong password!",
                                       "csrf_token": csrf_of(c)})
            assert r.status_code == 401
        r = c.post("/login", data={"email": "ann@example.com", "password": PASSWORD, "csrf_token": csrf_of(c)},
                   follow_redirects=False)
        assert r.status_code == 429
        assert "too many failed sign-ins" in r.text


@pytest.mark.parametrize(("password", "email"), [
    ("short", "new@example.com"),
    ("x" * 201, "new@example.com"),
    ("new@example.com", "new@example.com"),
    ("ten chars\x00 and a NUL", "new@example.com"),
])
def test_password_rules(app: Any, password: str, email: str) -> None:
    with new_client(app) as c:
        r = c.post("/v1/auth/register", json={"email": email, "password": password, "name": "New"})
        assert r.status_code == 422, r.text
        assert any(e["field"].endswith("password") for e in r.json()["errors"])


def test_revoked_token_is_refused_and_other_tokens_keep_working(app: Any, runtime: Runtime) -> None:
    make_user(runtime, email="ann@example.com")
    with new_client(app) as c:
        first = c.post("/v1/auth/tokens", json={"email": "ann@example.com", "password": PASSWORD}).json()["token"]
        second = c.post("/v1/auth/tokens", json={"email": "ann@example.com", "password": PASSWORD}).json()["token"]
        assert c.get("/v1/me", headers={"Authorization": f"Bearer {first}"}).status_code == 200
        assert c.delete("/v1/auth/tokens/current", headers={"Authorization": f"Bearer {first}"}).status_code == 204
        r = c.get("/v1/me", headers={"Authorization": f"Bearer {first}"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        assert c.delete("/v1/auth/tokens/current", headers={"Authorization": f"Bearer {first}"}).status_code == 401
        assert c.get("/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200


def test_uploads_are_bounded_sanitised_and_served_as_attachments(app: Any, runtime: Runtime, world: World) -> None:
    oid, m1, fid = world.ids["order"], world.ids["m1"], world.ids["file"]
    with new_client(app) as c:
        order = c.get(f"/v1/orders/{oid}", headers=world.headers("buyer")).json()
        name = order["deliveries"][0]["files"][0]["filename"]
        assert "/" not in name and ".." not in name and "\\" not in name
        for path, who in ((f"/v1/orders/{oid}/files/{fid}", "buyer"), (f"/v1/orders/{oid}/files/{fid}", "seller")):
            r = c.get(path, headers=world.headers(who))
            assert r.status_code == 200
            assert r.headers["content-disposition"].startswith("attachment;")
            assert "text/html" not in r.headers["content-type"]
            assert r.headers["x-content-type-options"] == "nosniff"
        web = new_client(app)
        with web:
            from tests.security.conftest import web_login

            web_login(web, world.emails["buyer"])
            r = web.get(f"/orders/{oid}/files/{fid}")
            assert r.status_code == 200
            assert r.headers["content-disposition"].startswith("attachment;")
            assert "text/html" not in r.headers["content-type"]
        # Nothing was written outside the file store.
        stored = [p for p in runtime.files.root.rglob("*") if p.is_file()] if hasattr(runtime.files, "root") else []
        assert all(runtime.settings.files_dir.resolve() in p.resolve().parents for p in stored)
        # Over the size limit: 413, nothing stored, the milestone unchanged.
        runtime.settings.max_upload_bytes = 1024
        r = c.post(f"/v1/orders/{oid}/milestones/{world.ids['m2']}/deliveries", headers=world.headers("seller"),
                   data={"message": "big"}, files=[("files", ("big.bin", b"x" * 4096))])
        assert r.status_code == 413, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert m1


def test_security_headers_on_web_and_api(app: Any, world: World) -> None:
    with new_client(app) as c:
        for path, headers in (("/login", {}), ("/v1/me", world.headers("buyer")), ("/v1/orders/ord_x", {})):
            r = c.get(path, headers=headers)
            assert r.headers.get("x-content-type-options") == "nosniff", path
            assert r.headers.get("x-frame-options") == "DENY", path
            csp = r.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in csp, path
        assert "script-src 'self'" in c.get("/login").headers["content-security-policy"]


def test_dev_clock_is_404_unless_enabled(runtime: Runtime, world: World) -> None:
    runtime.settings.dev_clock = False
    with new_client(create_app(runtime)) as c:
        r = c.post("/v1/dev/clock", headers=world.headers("buyer"), json={"advance": "P9D"})
        assert r.status_code == 404
        r = c.post("/v1/dev/clock", json={"advance": "P9D"})
        assert r.status_code == 404  # not even a 401: the endpoint does not exist


def test_dev_clock_is_refused_in_production_settings() -> None:
    with pytest.raises(ValidationError, match="production"):
        Settings(env="production", dev_clock=True, _env_file=None)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------------
# Webhook signatures (the receiver's helper, milepost.webhooks.verify)
# ---------------------------------------------------------------------------------------------

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"milestone.approved"}'


def test_a_fresh_valid_signature_is_accepted() -> None:
    now = int(time.time())
    assert verify_signature(SECRET, BODY, sign(SECRET, BODY, now)) == now


@pytest.mark.parametrize(("header", "why"), [
    (None, "missing"),
    ("", "missing"),
    ("v1=abc", "malformed"),
    ("t=notanumber,v1=abc", "malformed"),
    ("t=1,v1=", "malformed"),
])
def test_malformed_headers_are_refused(header: str | None, why: str) -> None:
    with pytest.raises(InvalidSignature, match=why):
        verify_signature(SECRET, BODY, header)


def test_tampering_and_wrong_secrets_are_refused() -> None:
    now = int(time.time())
    header = sign(SECRET, BODY, now)
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify_signature(SECRET, BODY + b" ", header)
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify_signature("whsec_other", BODY, header)
    # The timestamp is signed too: moving it breaks the signature.
    mac = header.split("v1=")[1]
    with pytest.raises(InvalidSignature, match="mismatch"):
        verify_signature(SECRET, BODY, f"t={now + 1},v1={mac}")


def test_replays_outside_the_window_are_refused() -> None:
    now = 1_800_000_000
    old = sign(SECRET, BODY, now - 301)
    with pytest.raises(InvalidSignature, match="replay window"):
        verify_signature(SECRET, BODY, old, now=now)
    future = sign(SECRET, BODY, now + 301)
    with pytest.raises(InvalidSignature, match="replay window"):
        verify_signature(SECRET, BODY, future, now=now)
    assert verify_signature(SECRET, BODY, sign(SECRET, BODY, now - 299), now=now) == now - 299
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, BODY, sign(SECRET, BODY, now - 60), now=now, tolerance_seconds=30)


def test_any_matching_v1_is_accepted_during_secret_rotation() -> None:
    now = int(time.time())
    good = sign(SECRET, BODY, now).split("v1=")[1]
    assert verify_signature(SECRET, BODY, f"t={now},v1={'0' * 64},v1={good}") == now
