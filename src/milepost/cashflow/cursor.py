"""Opaque page cursors: a JSON list of the last row's sort key, URL-safe base64 without padding."""

from __future__ import annotations

import base64
import json
from typing import Any

from milepost.errors import InvalidInput


def encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def invalid() -> InvalidInput:
    return InvalidInput("invalid cursor", errors=[{"field": "after", "message": "use next_cursor of the previous page"}])


def decode(cursor: object, *, max_len: int) -> list[Any]:
    """The list in a cursor from `encode`; anything else is an input error (422), never a crash.
    Callers check the list's shape and raise `invalid()` if it isn't theirs."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= max_len:
        raise invalid()
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise invalid() from None
    if not isinstance(raw, list):
        raise invalid()
    return raw
