"""Errors as application/problem+json (RFC 9457), rendered by one handler per kind of failure.

Every problem has `type`, `title`, `status`, `detail` and a stable `code`; invalid input adds `errors`,
a list of `{field, message}` naming every problem at once. Nothing the client sends may produce a 500:
unexpected exceptions are logged and answered with a generic problem without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from milepost.errors import InvalidInput, MilepostError

log = logging.getLogger("milepost.api")

PROBLEM_JSON = "application/problem+json"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="a URI naming the kind of problem: urn:milepost:problem:<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="stable, machine-readable problem code")
    errors: list[FieldProblem] | None = Field(None, description="every field problem (422 only)")


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or revoked bearer token",
    403: "Authenticated but not allowed (e.g. operator-only)",
    404: "Not found — also for other people's orders, so existence never leaks",
    409: "Illegal transition or conflict (the detail says what to do instead); "
    "Idempotency-Key reused with a different request",
    413: "Upload larger than the configured limit",
    422: "Invalid input; `errors` lists every field problem. Malformed JSON is a 422 too.",
    429: "Too many failed sign-ins from this address; wait `retry_after_seconds` (also in Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json answers."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem(
    status: int, *, code: str, title: str, detail: str, errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None, **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:milepost:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    for key, value in extra.items():
        if key not in body and isinstance(value, str | int | float | bool | type(None)):
            body[key] = value
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def render_error(exc: MilepostError) -> JSONResponse:
    errors = exc.errors if isinstance(exc, InvalidInput) else None
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 429:
        headers = {"Retry-After": str(exc.extra.get("retry_after_seconds", 60))}
    return problem(exc.status, code=exc.code, title=exc.title, detail=exc.message, errors=errors,
                   headers=headers, **exc.extra)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where = parts.pop(0)
        if where != "body":
            parts.insert(0, where)
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def validation_problems(errors: Any) -> list[dict[str, str]]:
    problems = []
    for err in errors:
        field = _loc_to_field(err.get("loc", ()))
        message = str(err.get("msg", "is invalid"))
        if err.get("type") == "json_invalid":
            field, message = "body", "is not valid JSON"
        problems.append({"field": field, "message": message})
    return problems or [{"field": "", "message": "invalid input"}]


def install(app: FastAPI) -> None:
    """Register the API's exception handlers on the app."""

    @app.exception_handler(MilepostError)
    async def _milepost_error(request: Request, exc: MilepostError) -> JSONResponse:
        return render_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc.errors())
        detail = "; ".join(f"{p['field'] or 'request'}: {p['message']}" for p in problems[:5])
        return problem(422, code="invalid_input", title="Invalid input", detail=detail, errors=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's answer to a body it cannot decode (bad UTF-8, broken JSON): invalid input,
            # like every other malformed request, so clients handle one documented status.
            return problem(422, code="invalid_input", title="Invalid input", detail="the body is not valid JSON",
                           errors=[{"field": "body", "message": "is not valid JSON"}])
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        return problem(exc.status_code, code=code, title=str(exc.detail) or "Error",
                       detail=str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, code="internal_error", title="Internal error",
                       detail="something went wrong on our side; the request had no effect")
