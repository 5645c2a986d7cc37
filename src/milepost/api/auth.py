"""Sign-up, tokens and the caller: POST /v1/auth/register, POST /v1/auth/tokens, GET /v1/me."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from milepost.accounts import service as accounts
from milepost.accounts.throttle import throttle_for
from milepost.api import idempotency
from milepost.api.deps import RuntimeDep, UserDep, bearer_token, release_read
from milepost.api.errors import problem_responses
from milepost.api.schemas import RegisterIn, RegisterOut, TokenIn, TokenOut, UserOut
from milepost.api.views import user_out
from milepost.context import Ctx
from milepost.errors import Unauthenticated

router = APIRouter(tags=["auth"])


def _anon_principal(email: str) -> str:
    # Anonymous callers are told apart by the e-mail they act on, so one person's key never replays
    # another person's response.
    return "anon:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:50]


@router.post("/auth/register", status_code=201, response_model=RegisterOut,
             responses=problem_responses(409, 422), summary="Create an account; answers a first token")
def register(body: RegisterIn, request: Request, runtime: RuntimeDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        user = accounts.create_user(ctx, email=body.email, password=body.password, name=body.name)
        token = accounts.issue_token(ctx, user, name="register")
        return {"user": user_out(user), "token": token}

    def replay(ctx: Ctx) -> dict[str, Any]:
        # The account was created by the first request; a replay proves the password again and
        # gets a fresh token (tokens are never stored in the clear, not even for replays).
        user = accounts.authenticate(ctx.session, email=body.email, password=body.password)
        return {"user": user_out(user), "token": accounts.issue_token(ctx, user, name="register")}

    return idempotency.run(request, runtime, principal=_anon_principal(body.email), payload=body,
                           action=action, status_code=201, replay=replay)


@router.post("/auth/tokens", status_code=201, response_model=TokenOut,
             responses=problem_responses(401, 409, 422, 429), summary="Log in: a new bearer token")
def create_token(body: TokenIn, request: Request, runtime: RuntimeDep) -> Response:
    throttle = throttle_for(request.app.state)
    ip = request.client.host if request.client else "unknown"
    throttle.check(body.email, ip)

    def action(ctx: Ctx) -> dict[str, Any]:
        try:
            user = accounts.authenticate(ctx.session, email=body.email, password=body.password)
        except Unauthenticated:
            throttle.failed(body.email, ip)
            raise
        throttle.succeeded(body.email, ip)
        return {"token": accounts.issue_token(ctx, user), "token_type": "bearer"}

    return idempotency.run(request, runtime, principal=_anon_principal(body.email), payload=body,
                           action=action, status_code=201, replay=action)


@router.delete("/auth/tokens/current", status_code=204, responses=problem_responses(401),
               summary="Revoke the token this request is made with")
def revoke_current(request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    token = bearer_token(request)
    assert token is not None
    release_read(request)
    with runtime.unit_of_work() as ctx:
        accounts.revoke_token(ctx, token)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=problem_responses(401), summary="Who am I")
def me(user: UserDep) -> dict[str, Any]:
    return user_out(user)
