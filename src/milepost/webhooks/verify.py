"""Receiver side: check a `Milepost-Signature` header before trusting a webhook.

The header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the endpoint secret>`.
Checking the timestamp against a replay window stops an attacker who captured one request from
replaying it later; deduplicate by the `id` in the body (also sent as `Milepost-Event-Id`) because
Milepost delivers at least once.

    from milepost.webhooks.verify import verify_signature
    verify_signature(secret, request_body_bytes, request.headers["Milepost-Signature"])

Only the standard library is used, so the file can be copied into a receiver as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The webhook is not authentic or is too old (or too far in the future) to accept."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value Milepost sends for `body` at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Return the signed timestamp if the signature is valid and fresh; raise InvalidSignature if not."""
    if not header:
        raise InvalidSignature("missing Milepost-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("malformed Milepost-Signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidSignature("timestamp outside the replay window")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise InvalidSignature("signature mismatch")
    return timestamp
