"""The small tree of domain errors. Each has a stable `code` and the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class MilepostError(Exception):
    code = "error"
    status = 400
    title = "Request failed"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class NotFound(MilepostError):
    code = "not_found"
    status = 404
    title = "Not found"


class Unauthenticated(MilepostError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(MilepostError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class IllegalTransition(MilepostError):
    code = "illegal_transition"
    status = 409
    title = "Not possible in the current state"


class Conflict(MilepostError):
    code = "conflict"
    status = 409
    title = "Conflict"


class InvalidInput(MilepostError):
    """Invalid input; `errors` lists every problem found, each with the field it concerns."""

    code = "invalid_input"
    status = 422
    title = "Invalid input"

    def __init__(
        self, message: str, *, errors: list[dict[str, str]] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.errors = errors or [{"field": "", "message": message}]
