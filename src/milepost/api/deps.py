"""FastAPI dependencies shared by every router: the runtime, the caller, a unit of work."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request

from milepost.accounts import service as accounts
from milepost.accounts.models import User
from milepost.context import Ctx
from milepost.errors import Forbidden, Unauthenticated
from milepost.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        return None
    return token.strip()


def read_ctx(request: Request, runtime: RuntimeDep) -> Iterator[Ctx]:
    """The request's read transaction. FastAPI solves a dependency once per request, so
    authentication and a read endpoint share it: one pooled connection, one pre-ping, one
    BEGIN/ROLLBACK per request instead of two of each (and the caller is in its identity map).
    A write releases it first (`release_read`), so no request ever holds two connections."""
    with runtime.reading() as ctx:
        request.state.read_session = ctx.session
        yield ctx


# Closed as soon as the endpoint function returns, not after the response is sent (a streamed
# export opens its own session). `scope` is FastAPI ≥ 0.121; older versions close it after sending.
_FUNCTION_SCOPE: dict[str, Any] = (
    {"scope": "function"} if "scope" in inspect.signature(Depends).parameters else {}
)
ReadCtx = Annotated[Ctx, Depends(read_ctx, **_FUNCTION_SCOPE)]


def release_read(request: Request) -> None:
    """Give back the request's read connection before opening a write transaction: holding one
    while waiting for another from the same pool can deadlock a busy server. Objects already
    loaded (the caller) stay readable."""
    session = getattr(request.state, "read_session", None)
    if session is not None:
        session.close()


def current_user(request: Request, ctx: ReadCtx) -> User:
    """The authenticated caller (bearer token). 401 without a valid, unrevoked token."""
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>' (POST /v1/auth/tokens gives one)")
    user = accounts.user_for_token(ctx.session, token)
    if user is None:
        raise Unauthenticated("the token is invalid or revoked", code="invalid_token")
    request.state.user = user
    return user


UserDep = Annotated[User, Depends(current_user)]


def operator_user(user: UserDep) -> User:
    if not user.is_operator:
        raise Forbidden("only an operator can do this", code="operator_only")
    return user


OperatorDep = Annotated[User, Depends(operator_user)]


def write_ctx(request: Request, runtime: RuntimeDep) -> Iterator[Ctx]:
    """One write transaction for the request: committed when the handler returns, else rolled back."""
    release_read(request)
    with runtime.unit_of_work() as ctx:
        yield ctx


WriteCtx = Annotated[Ctx, Depends(write_ctx)]
