"""FastAPI dependencies shared by every router: the runtime, the caller, a unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

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


def current_user(request: Request, runtime: RuntimeDep) -> User:
    """The authenticated caller (bearer token). 401 without a valid, unrevoked token."""
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>' (POST /v1/auth/tokens gives one)")
    with runtime.reading() as ctx:
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


def write_ctx(runtime: RuntimeDep) -> Iterator[Ctx]:
    """One write transaction for the request: committed when the handler returns, else rolled back."""
    with runtime.unit_of_work() as ctx:
        yield ctx


def read_ctx(runtime: RuntimeDep) -> Iterator[Ctx]:
    with runtime.reading() as ctx:
        yield ctx


WriteCtx = Annotated[Ctx, Depends(write_ctx)]
ReadCtx = Annotated[Ctx, Depends(read_ctx)]
