"""Jinja2 rendering, and how money and times are shown: in the reader's locale and time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, get_currency_symbol
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from milepost.accounts.models import User
from milepost.clock import as_utc
from milepost.money import currency_digits, format_money, to_decimal_string

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

STATUS_LABELS = {
    "proposed": "Proposed", "agreed": "Agreed", "active": "Active", "completed": "Completed",
    "cancelled": "Cancelled", "pending": "Not started", "in_progress": "In progress",
    "delivered": "Delivered", "approved": "Approved", "disputed": "Disputed", "resolved": "Resolved",
    "open": "Negotiating", "escalated": "With the operator",
}


def _locale(name: str | None) -> str:
    try:
        return str(Locale.parse(name or "en_US"))
    except (UnknownLocaleError, ValueError, TypeError):
        return "en_US"


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass
class Fmt:
    """Formatting bound to one reader (locale, time zone) and one moment (the clock's now)."""

    locale: str
    zone: ZoneInfo
    now: datetime

    @classmethod
    def for_user(cls, user: User | None, now: datetime) -> Fmt:
        return cls(_locale(user.locale if user else None), _zone(user.timezone if user else None), now)

    def money(self, amount: int | None, currency: str) -> str:
        return format_money(amount or 0, currency, self.locale)

    def plain(self, amount: int | None, currency: str) -> str:
        """Major-unit decimal for form inputs ("1250.00"), never locale-formatted."""
        return to_decimal_string(amount or 0, currency)

    def number(self, value: float | int) -> str:
        return str(format_decimal(value, locale=self.locale))

    def symbol(self, currency: str) -> str:
        return str(get_currency_symbol(currency, locale=self.locale))

    def digits(self, currency: str) -> int:
        return currency_digits(currency)

    def dt(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return str(format_datetime(as_utc(value), "medium", tzinfo=self.zone, locale=self.locale))

    def date(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        local = as_utc(value).astimezone(self.zone)
        return str(format_date(local.date(), "medium", locale=self.locale))

    def iso(self, value: datetime | None) -> str:
        return as_utc(value).isoformat() if value else ""

    def span(self, delta: timedelta) -> str:
        seconds = int(abs(delta.total_seconds()))
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes = rest // 60
        if days:
            return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
        if hours:
            return f"{hours} h {minutes} min"
        return f"{max(minutes, 1)} min"

    def until(self, value: datetime | None) -> str:
        """'in 6 days 23 h' or 'overdue by 2 days'."""
        if value is None:
            return ""
        delta = as_utc(value) - self.now
        return f"in {self.span(delta)}" if delta.total_seconds() >= 0 else f"{self.span(delta)} ago"

    def is_past(self, value: datetime | None) -> bool:
        return value is not None and as_utc(value) <= self.now

    def status(self, value: str) -> str:
        return STATUS_LABELS.get(value, value.replace("_", " ").capitalize())


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    from milepost.web.routing import csrf_token, pop_flashes

    runtime = request.app.state.runtime
    user = getattr(request.state, "user", None)
    now = runtime.clock.now()
    base = {
        "request": request,
        "user": user,
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request),
        "fmt": Fmt.for_user(user, now),
        "now": now,
        "dev_clock": bool(runtime.settings.dev_clock),
        "clock_offset": getattr(runtime.clock, "offset", None),
    }
    base.update(context or {})
    return templates.TemplateResponse(request, template, base, status_code=status_code)
