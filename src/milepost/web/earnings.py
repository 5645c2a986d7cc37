"""Earnings: balances, the weekly cash-flow chart, the forecast table, payouts and exports.

Numbers come from the cash-flow services (`milepost.cashflow`), the same ones the API serves, so the
page, `GET /v1/balances`, `GET /v1/forecast` and the journal exports always agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from milepost.cashflow import exports
from milepost.cashflow import forecast as cashflow_forecast
from milepost.cashflow import service as cashflow
from milepost.errors import InvalidInput, MilepostError
from milepost.money import Money, is_known_currency
from milepost.payouts import service as payouts
from milepost.web.routing import FormDep, RuntimeDep, UserDep, WebRoute, flash, redirect
from milepost.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

CHART_WEEKS = 12
CERTAINTY_LABELS = {
    "available": "Available now",
    "clearing": "Clearing (exact date)",
    "held": "Approved, released on completion",
    "awaiting_review": "Awaiting review",
    "in_progress": "In progress",
    "not_started": "Not started",
}
CHART_STACK = ["available", "clearing", "held", "awaiting_review", "in_progress", "not_started"]


@dataclass
class Bar:
    label: str
    x: float
    segments: list[tuple[str, float, float, int]]  # certainty, y, height, amount
    total: int


def weekly_chart(weekly: list[Any], currency: str, *, height: float = 160.0) -> dict[str, Any]:
    """Geometry of a stacked bar chart (inline SVG, drawn by the template) of the first weeks."""
    weeks = [w for w in weekly if w.currency == currency][:CHART_WEEKS]
    top = max((w.amount for w in weeks), default=0) or 1
    width = 44.0
    bars = []
    for i, w in enumerate(weeks):
        y = height
        segments = []
        for certainty in CHART_STACK:
            amount = int(w.by_certainty.get(certainty, 0))
            if amount <= 0:
                continue
            h = max((height - 12) * amount / top, 1.0)
            y -= h
            segments.append((certainty, round(y, 1), round(h, 1), amount))
        bars.append(Bar(label=w.period.split("-")[-1], x=i * width + 8, segments=segments, total=w.amount))
    return {"bars": bars, "width": max(len(weeks), 1) * width + 16, "height": height, "top": top,
            "weeks": weeks}


def _context(runtime: Any, user: Any, form: dict[str, str] | None = None,
             errors: dict[str, str] | None = None, after: str | None = None) -> dict[str, Any]:
    now = runtime.clock.now()
    if after is not None:
        try:
            cashflow_forecast.decode_cursor(after)
        except InvalidInput:
            after = None  # a stale or mangled link: show the first page
    with runtime.reading() as ctx:
        # totals only: the page shows no per-order list (the API pages it)
        balances = cashflow.balances_for(ctx.session, user.id, limit=0)
        try:
            forecast = cashflow_forecast.seller_forecast(ctx.session, user.id, now=now, tz=user.timezone,
                                                         after=after)
        except InvalidInput:
            forecast = cashflow_forecast.seller_forecast(ctx.session, user.id, now=now, tz="UTC", after=after)
        recent = payouts.payouts_of(ctx, user.id, limit=10)
    currencies = sorted({b.currency for b in balances} | {line.currency for line in forecast.lines})
    charts = {c: weekly_chart(forecast.weekly, c) for c in currencies}
    return {
        "balances": balances, "forecast": forecast, "charts": charts, "currencies": currencies,
        "certainty_labels": CERTAINTY_LABELS, "payouts": recent,
        "min_payout": runtime.settings.min_payout_major, "form": form or {}, "errors": errors or {},
        "formats": [f.value for f in exports.ExportFormat], "after": after,
    }


@router.get("/earnings", response_class=HTMLResponse)
def earnings(request: Request, runtime: RuntimeDep, user: UserDep, after: str | None = None) -> Response:
    """The chart is drawn from the totals (every line); the table shows one page of lines, with a
    link to the next page (`?after=<cursor>`)."""
    return render(request, "earnings.html", _context(runtime, user, after=after))


@router.post("/earnings/payouts", response_class=HTMLResponse)
def payout(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep) -> Response:
    values = {"amount": str(form.get("amount", "")), "currency": str(form.get("currency", ""))}
    try:
        if not is_known_currency(values["currency"]):
            raise InvalidInput("choose a currency", errors=[{"field": "currency", "message": "choose a currency"}])
        try:
            amount = Money.parse(values["amount"], values["currency"]).amount
        except (ValueError, TypeError) as exc:
            raise InvalidInput("the amount is invalid", errors=[{"field": "amount", "message": str(exc)}]) from None
        with runtime.unit_of_work() as ctx:
            done = payouts.create_payout(ctx, actor=user, amount=amount, currency=values["currency"])
            paid = Money(done.amount, done.currency)
    except MilepostError as exc:
        if isinstance(exc, InvalidInput):
            errors = {e.get("field") or "amount": e.get("message", "") for e in exc.errors}
            if "minimum" in exc.message:  # the service's own sentence names the amount in money
                errors["amount"] = exc.message
        else:
            errors = {"amount": exc.message}
        return render(request, "earnings.html", _context(runtime, user, values, errors), status_code=422)
    flash(request, f"Payout of {paid.format(user.locale or 'en_US')} sent to your account.")
    return redirect("/earnings")


@router.get("/earnings/export/{fmt}")
def export(runtime: RuntimeDep, user: UserDep, fmt: str) -> Response:
    chosen = exports.parse_format(fmt)

    def stream() -> Iterator[bytes]:
        # A reading unit of work of its own: the response streams after the view returned.
        with runtime.reading() as ctx:
            for chunk in exports.export(ctx.session, chosen, user_id=user.id):
                yield chunk.encode()

    name = f"milepost-{user.id}.{exports.FILE_EXTENSIONS[chosen]}"
    return StreamingResponse(stream(), media_type=exports.MEDIA_TYPES[chosen],
                             headers={"content-disposition": f'attachment; filename="{name}"'})
