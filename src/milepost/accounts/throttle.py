"""Login throttling: too many failed sign-ins for one e-mail from one address, or from one address
overall, are refused (429) for a while — before any password is checked.

Limits (per process; a sliding window of WINDOW_SECONDS):
* PER_ACCOUNT_AND_IP failures for one e-mail from one client address;
* PER_IP failures from one client address, whatever e-mails it tries.
A successful sign-in clears that e-mail's failures from that address.

The counts live in memory, in the app (one `LoginThrottle` per app instance): N app processes allow
up to N× the attempts, and a restart forgets them. That bounds online guessing (with argon2 hashes
and a 10-character minimum) well enough for the embedded setup; a deployment with many nodes should
also rate-limit /login and /v1/auth/tokens at its reverse proxy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from milepost.errors import MilepostError

WINDOW_SECONDS = 15 * 60
PER_ACCOUNT_AND_IP = 5
PER_IP = 50
MAX_TRACKED = 50_000  # keys kept in memory before the oldest are dropped


class TooManyAttempts(MilepostError):
    code = "too_many_attempts"
    status = 429
    title = "Too many failed sign-ins"


class LoginThrottle:
    def __init__(self, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - WINDOW_SECONDS:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, email: str, ip: str) -> None:
        """Raise TooManyAttempts when this e-mail (or this address) failed too often lately."""
        now = self._clock()
        with self._lock:
            for key, limit in (((_norm(email), ip), PER_ACCOUNT_AND_IP), (("*", ip), PER_IP)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    retry_after = int(times[0] + WINDOW_SECONDS - now) + 1
                    raise TooManyAttempts(
                        f"too many failed sign-ins; try again in {retry_after // 60 + 1} minutes",
                        retry_after_seconds=retry_after,
                    )

    def failed(self, email: str, ip: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:
                for key in list(self._failures)[: MAX_TRACKED // 10]:
                    del self._failures[key]
            for key in ((_norm(email), ip), ("*", ip)):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email: str, ip: str) -> None:
        with self._lock:
            self._failures.pop((_norm(email), ip), None)


def _norm(email: object) -> str:
    return email.strip().lower()[:320] if isinstance(email, str) else ""


_create_lock = threading.Lock()


def throttle_for(app_state: Any) -> LoginThrottle:
    """The app's throttle (created on first use; app.state is per app instance)."""
    with _create_lock:
        throttle = getattr(app_state, "login_throttle", None)
        if throttle is None:
            throttle = app_state.login_throttle = LoginThrottle()
    return throttle  # type: ignore[no-any-return]
