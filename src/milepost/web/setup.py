"""Web app wiring: the session cookie, security headers and static files.

Only web paths get the web treatment: the API under /v1 (and its docs) keeps its own headers and
its own problem+json error handler. Friendly error pages and the CSRF check live on the web
router's route class (`milepost.web.routing.WebRoute`), so they can never intercept an API route.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "milepost_session"
SESSION_MAX_AGE = 14 * 24 * 3600
NOT_WEB_PREFIXES = ("/v1", "/docs", "/openapi.json", "/redoc", "/healthz")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def is_web_path(path: str) -> bool:
    return not any(path == p or path.startswith(p + "/") for p in NOT_WEB_PREFIXES)


class WebSessions:
    """Starlette's signed-cookie sessions (HttpOnly, SameSite=Lax) for web paths only.

    The cookie is marked Secure when the request came over https (directly or through a proxy that
    uvicorn trusts): one middleware instance per flag, so concurrent requests never share state.
    """

    def __init__(self, app: ASGIApp, *, secret_key: str) -> None:
        self.app = app
        common = dict(secret_key=secret_key, session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE,
                      same_site="lax")
        self.plain = SessionMiddleware(app, https_only=False, **common)  # type: ignore[arg-type]
        self.secure = SessionMiddleware(app, https_only=True, **common)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        chosen = self.secure if scope.get("scheme") == "https" else self.plain
        await chosen(scope, receive, send)


# JSON answers are never meant to be rendered or framed: the strictest policy (not on /docs, whose
# page loads Swagger UI's scripts).
API_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class WebSecurityHeaders:
    """CSP (no inline scripts or styles), nosniff, no framing — on web responses; a stricter set on /v1."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if is_web_path(path):
            chosen = SECURITY_HEADERS
        elif path == "/v1" or path.startswith("/v1/"):
            chosen = API_SECURITY_HEADERS
        else:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in chosen if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Register the web app's middleware and static files on the app."""
    runtime = app.state.runtime
    app.add_middleware(WebSecurityHeaders)
    app.add_middleware(WebSessions, secret_key=runtime.settings.secret_key)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
