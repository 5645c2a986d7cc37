"""Against a real `milepost serve`: secrets never reach the logs, the session cookie is Secure
behind an https proxy (X-Forwarded-Proto from 127.0.0.1), production refuses the dev clock."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import httpx

from tests.reliability.conftest import make_stack  # noqa: F401  (fixture)
from tests.reliability.harness import MILEPOST, PASSWORD, Api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_secrets_never_reach_the_logs(make_stack: Any) -> None:  # noqa: F811
    stack = make_stack("sqlite")
    server = stack.start_server()
    worker = stack.start_worker()
    api = Api(server.url)
    buyer = api.register("logs-buyer@example.com")
    seller = api.register("logs-seller@example.com")
    secret_password = "s3cret-pässword-never-logged"
    api.ok(api.post("/v1/auth/register", body={"email": "logs-eve@example.com", "password": secret_password,
                                              "name": "Eve"}), 201)
    tokens = [buyer, seller]
    for _ in range(2):
        r = api.post("/v1/auth/tokens", body={"email": "logs-eve@example.com", "password": secret_password})
        tokens.append(api.ok(r, 201)["token"])
    api.post("/v1/auth/tokens", body={"email": "logs-eve@example.com", "password": secret_password + "-wrong"})
    api.post("/v1/auth/register", body={"email": "bad", "password": secret_password + "-invalid", "name": ""})
    api.order(buyer, "logs-seller@example.com", [10_000], seller=seller)
    api.get("/v1/me", tokens[-1] + "-tampered")
    with httpx.Client(base_url=server.url) as web:
        token = CSRF.search(web.get("/login").text).group(1)  # type: ignore[union-attr]
        web.post("/login", data={"email": "logs-eve@example.com", "password": secret_password, "csrf_token": token})
        web.post("/login", data={"email": "logs-eve@example.com", "password": secret_password + "-web",
                                 "csrf_token": token})
    log = server.log() + worker.log()
    assert "POST /v1/auth/tokens" in log  # the access log is on: the check below is not vacuous
    for secret in [secret_password, *tokens, stack.env()["MILEPOST_SECRET_KEY"]]:
        assert secret not in log, f"a secret ({secret[:6]}…) was written to the logs"
    assert "password=" not in log.lower() and "authorization: bearer" not in log.lower()


def test_session_cookie_is_secure_behind_an_https_proxy(make_stack: Any) -> None:  # noqa: F811
    stack = make_stack("sqlite")
    server = stack.start_server()
    Api(server.url).register("proxy@example.com")
    with httpx.Client(base_url=server.url) as web:
        page = web.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "secure" in page.headers["set-cookie"].lower()
        # httpx keeps a Secure cookie away from http://, as a browser would: carry it by hand, as the
        # https proxy in front would.
        session = page.headers["set-cookie"].split(";")[0]
        token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        web.cookies.clear()
        r = web.post("/login", data={"email": "proxy@example.com", "password": PASSWORD, "csrf_token": token},
                     headers={"X-Forwarded-Proto": "https", "Cookie": session}, follow_redirects=False)
        assert r.status_code == 303, r.text[:300]
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    with httpx.Client(base_url=server.url) as plain:
        cookie = plain.get("/login").headers["set-cookie"].lower()
        assert "secure" not in cookie and "httponly" in cookie


def test_production_refuses_to_start_with_the_dev_clock(make_stack: Any) -> None:  # noqa: F811
    stack = make_stack("sqlite")
    env = {**stack.env(), "MILEPOST_ENV": "production", "MILEPOST_DEV_CLOCK": "1"}
    result = subprocess.run([MILEPOST, "worker", "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "production" in (result.stdout + result.stderr)
    # A production server without the dev clock has no such endpoint.
    stack.extra_env.update({"MILEPOST_ENV": "production"})
    stack.dev_clock = False
    server = stack.start_server()
    api = Api(server.url)
    token = api.register("prod@example.com")
    assert api.post("/v1/dev/clock", token, {"advance": "P9D"}).status_code == 404
