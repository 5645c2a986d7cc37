"""What every web route shares: the signed-in user, CSRF, flash messages and friendly errors.

`WebRoute` is the route class of the web routers. It checks the CSRF token of every POST before
the view runs, and turns domain errors (`MilepostError`) into a friendly page. Being a route class
rather than an app-wide exception handler, it can never touch the API's problem+json responses.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from milepost.accounts.models import User
from milepost.errors import Forbidden, MilepostError, NotFound
from milepost.runtime import Runtime

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_FILES = 20
MAX_FORM_FIELDS = 2000


class LoginRequired(Exception):
    """Raised by views that need a signed-in user; answered with a redirect to /login."""


class CsrfFailed(MilepostError):
    code = "csrf_failed"
    status = 403
    title = "This form has expired"


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# ---------------------------------------------------------------------------------------------
# Session: user, CSRF token, flash messages
# ---------------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 20:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def sign_in(request: Request, user: User) -> None:
    # A fresh session on every sign-in: nothing from before (nor its CSRF token) carries over.
    request.session.clear()
    request.session["uid"] = user.id
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def flash(request: Request, message: str, kind: str = "success") -> None:
    messages = list(request.session.get("flash", []))[-4:]
    messages.append({"kind": kind, "message": message})
    request.session["flash"] = messages


def pop_flashes(request: Request) -> list[dict[str, str]]:
    return list(request.session.pop("flash", []) or [])


def optional_user(request: Request, runtime: RuntimeDep) -> User | None:
    uid = request.session.get("uid")
    if not isinstance(uid, str):
        return None
    if getattr(request.state, "user", None) is not None:
        return request.state.user  # type: ignore[no-any-return]
    with runtime.reading() as ctx:
        user = ctx.session.get(User, uid)
    if user is None:
        request.session.pop("uid", None)
        return None
    request.state.user = user
    return user


def required_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise LoginRequired()
    return user


def operator_user(user: Annotated[User, Depends(required_user)]) -> User:
    if not user.is_operator:
        raise Forbidden("only operators can open this page", code="operator_only")
    return user


MaybeUser = Annotated[User | None, Depends(optional_user)]
UserDep = Annotated[User, Depends(required_user)]
OperatorDep = Annotated[User, Depends(operator_user)]


async def form_data(request: Request) -> FormData:
    """The submitted form (already parsed, and CSRF-checked, by WebRoute for POSTs)."""
    return await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)


FormDep = Annotated[FormData, Depends(form_data)]


def redirect(url: str) -> RedirectResponse:
    """POST → 303 → GET: a reload never re-submits the form."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths are followed after login (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


# ---------------------------------------------------------------------------------------------
# The route class
# ---------------------------------------------------------------------------------------------


async def _check_csrf(request: Request) -> None:
    expected = request.session.get("csrf")
    form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(sent, str) or not hmac.compare_digest(
        expected.encode(), sent.encode()
    ):
        raise CsrfFailed(
            "This form has expired or did not come from this site. Reload the page and try again."
        )


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def web_handler(request: Request) -> Response:
            try:
                if request.method == "POST":
                    await _check_csrf(request)
                return await handler(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method != "GET":
                    target = request.headers.get("referer", "/")
                    target = urlsplit(target).path or "/"
                return redirect("/login?next=" + quote(safe_next(target), safe="/"))
            except MilepostError as exc:
                return error_page(request, exc)

        return web_handler


def error_page(request: Request, exc: MilepostError) -> Response:
    from milepost.web.templating import render

    status = exc.status
    heading = exc.title
    message = exc.message
    if isinstance(exc, NotFound):
        heading, message = "Not found", "There is nothing here, or it is not yours to see."
    elif status == 401:
        heading = "Please sign in"
    return render(request, "error.html", {"heading": heading, "message": message, "code": exc.code},
                  status_code=status)
