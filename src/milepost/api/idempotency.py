"""Idempotency-Key on every POST, kept in the database with the effect it guards.

A POST with `Idempotency-Key: <key>` claims the key by inserting its record (unique on principal and
key) in the same transaction as the effect, and fills in the response before committing. So:

* a retry with the same key and the same request gets the stored status and body back, marked with
  `Idempotent-Replayed: true`, and nothing happens twice;
* the same key with a different request (other path or body) is a 409 `idempotency_key_reused`;
* concurrent retries serialise on the record: on PostgreSQL the second insert waits for the first
  transaction and then fails on the unique key, on SQLite writers already serialise (BEGIN IMMEDIATE);
  the loser rolls back and replays the winner's response.

Only successful responses are stored: a request that failed changed nothing, so retrying it with the
same key simply tries again.

Two things never rest in the table in a usable form: request bodies are fingerprinted with an HMAC
under the installation's secret key (a body may hold a password; a plain hash could be cracked
offline), and endpoints that mint bearer tokens pass `replay=`: their stored body is empty and a
replay runs `replay` instead (re-checking the password and minting a fresh token) — the effect still
happened exactly once, and no token is kept in plain text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from milepost.api.deps import release_read
from milepost.context import Ctx
from milepost.errors import Conflict, InvalidInput
from milepost.idempotency.models import IdempotencyRecord
from milepost.runtime import Runtime

MAX_KEY = 200
HEADER = "Idempotency-Key"


def _key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY} printable ASCII characters without spaces",
            errors=[{"field": f"header.{HEADER}", "message": "must be 1-200 printable ASCII characters"}],
        )
    return key


def request_hash(request: Request, payload: Any, *, secret: str) -> str:
    canonical = json.dumps(jsonable_encoder(payload), sort_keys=True, separators=(",", ":"))
    message = f"{request.method} {request.url.path}\n{canonical}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _find(session: Any, principal: str, key: str) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
    ).first()


def _replay(record: IdempotencyRecord, digest: str) -> Response:
    if record.request_hash != digest:
        raise Conflict(
            "this Idempotency-Key was already used for a different request; use a new key for a new "
            "request", code="idempotency_key_reused",
        )
    return Response(
        content=record.response_body, status_code=record.status_code, media_type=record.content_type,
        headers={"Idempotent-Replayed": "true"},
    )


def run(
    request: Request,
    runtime: Runtime,
    *,
    principal: str,
    payload: Any,
    action: Callable[[Ctx], Any],
    status_code: int = 200,
    replay: Callable[[Ctx], Any] | None = None,
) -> Response:
    """Run `action` in one write transaction and answer its JSON result, honouring Idempotency-Key."""
    release_read(request)
    key = _key(request)
    if key is None:
        with runtime.unit_of_work() as ctx:
            result = action(ctx)
        return JSONResponse(jsonable_encoder(result), status_code=status_code)

    digest = request_hash(request, payload, secret=runtime.settings.secret_key)
    principal = principal[:60]
    try:
        with runtime.unit_of_work() as ctx:
            existing = _find(ctx.session, principal, key)
            if existing is not None:
                replayed = _replay(existing, digest)
                if replay is not None:
                    fresh = json.dumps(jsonable_encoder(replay(ctx)), separators=(",", ":"))
                    replayed = Response(content=fresh, status_code=existing.status_code,
                                        media_type="application/json",
                                        headers={"Idempotent-Replayed": "true"})
            else:
                replayed = None
                record = IdempotencyRecord(
                    principal=principal, key=key, method=request.method, path=request.url.path[:500],
                    request_hash=digest, status_code=0, content_type="application/json",
                    response_body="", created_at=ctx.now,
                )
                ctx.session.add(record)
                ctx.session.flush()  # claims the key now: a concurrent retry waits here
                result = action(ctx)
                body = json.dumps(jsonable_encoder(result), separators=(",", ":"))
                record.status_code = status_code
                record.response_body = "" if replay is not None else body
    except (IntegrityError, OperationalError):
        # Lost the race for the key (or the effect's own unique key): answer what the winner stored.
        with runtime.reading() as ctx:
            existing = _find(ctx.session, principal, key)
        if existing is None or existing.status_code == 0 or replay is not None:
            raise
        return _replay(existing, digest)
    if replayed is not None:
        return replayed
    return Response(content=body, status_code=status_code, media_type="application/json")
