"""HTTP endpoints of the cash-flow work: balances, forecast, statements, exports, calendar.

Mounted inside the `/v1` router, so the paths here carry no prefix. Every endpoint answers for the
caller only (their orders as seller and buyer, their payouts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from milepost.api.deps import ReadCtx, RuntimeDep, UserDep
from milepost.api.errors import problem_responses
from milepost.cashflow import exports, forecast, ical, service, statements

router = APIRouter(tags=["cash flow"])

DateParam = Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD (UTC), inclusive")]


@router.get(
    "/balances",
    responses=problem_responses(401, 422),
    summary="Balances per currency, as seller and as buyer",
    description=(
        "Per currency: `in_escrow`, `clearing`, `available`, `paid_out` (seller) and `committed`, "
        "`refunded`, `spent` (buyer), each over every order; `order_count` orders hold `in_escrow`. "
        "`in_escrow_by_order` lists one page of those orders (by order id, across currencies); when "
        "more follow, `next_cursor` is set: pass it as `after` for the next page."
    ),
)
def get_balances(
    user: UserDep,
    ctx: ReadCtx,
    limit: Annotated[int, Query(ge=1, le=service.MAX_ORDERS, description="Orders per page of "
                                "`in_escrow_by_order`")] = service.DEFAULT_ORDERS,
    after: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page: "
                                       "the orders after it")] = None,
) -> dict[str, Any]:
    return service.balances_payload(ctx.session, user.id, limit=limit, after=after)


@router.get(
    "/forecast",
    responses=problem_responses(401, 422),
    summary="Dated cash-flow forecast (seller) and funding schedule (buyer)",
    description=(
        "Seller: `totals` (per currency, by certainty, ISO week and month in `tz`) always cover every "
        "open milestone, clearing lot and available balance; `lines` is one page of the dated "
        "schedule, ordered by expected date, certainty, currency, order, milestone. `line_count` is "
        "the number of lines in the whole schedule; when more follow, `next_cursor` is set: pass it "
        "as `after` for the next page. Disputed milestones are listed under `excluded`. "
        "Buyer: what is committed in escrow and when each next funding falls due."
    ),
)
def get_forecast(
    user: UserDep,
    ctx: ReadCtx,
    tz: Annotated[str | None, Query(max_length=60, description="IANA zone for weekly/monthly totals; "
                                    "defaults to the user's")] = None,
    limit: Annotated[int, Query(ge=1, le=forecast.MAX_LINES, description="Lines per page of the seller "
                                "schedule")] = forecast.DEFAULT_LINES,
    after: Annotated[str | None, Query(max_length=400, description="`next_cursor` of the previous page: "
                                       "the lines after it")] = None,
) -> dict[str, Any]:
    seller = forecast.seller_forecast(ctx.session, user.id, now=ctx.now, tz=tz or user.timezone or "UTC",
                                      limit=limit, after=after)
    buyer = forecast.buyer_forecast(ctx.session, user.id, now=ctx.now)
    return {"seller": seller.as_dict(), "buyer": buyer.as_dict()}


@router.get("/statements/payouts/{payout_id}", responses=problem_responses(401, 404), summary="Which milestones and fees a payout paid (FIFO)")
def get_payout_statement(payout_id: str, user: UserDep, ctx: ReadCtx) -> dict[str, Any]:
    return statements.payout_statement(ctx.session, seller_id=user.id, payout_id=payout_id).as_dict()


@router.get("/statements/period", responses=problem_responses(401, 422), summary="Opening balance, movements and closing balance of a period")
def get_period_statement(
    user: UserDep,
    ctx: ReadCtx,
    from_: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD (UTC), inclusive")] = None,
    to: DateParam = None,
) -> dict[str, Any]:
    period = exports.parse_period(from_, to)
    found = statements.period_statement(ctx.session, seller_id=user.id, period=period)
    return {"statements": [s.as_dict() for s in found]}


@router.get(
    "/exports/journal",
    summary="The caller's ledger as beancount, hledger journal or CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}, "text/csv": {}}}, **problem_responses(401, 422)},
)
def get_journal(
    user: UserDep,
    runtime: RuntimeDep,
    format: Annotated[str, Query(max_length=20, description="beancount | hledger | csv")] = "hledger",
    from_: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD (UTC), inclusive")] = None,
    to: DateParam = None,
) -> StreamingResponse:
    fmt = exports.parse_format(format)
    period = exports.parse_period(from_, to)
    user_id = user.id

    def body() -> Iterator[bytes]:
        # The session lives as long as the stream: it is opened here, not by a dependency that
        # would close it before the response body is sent.
        with runtime.reading() as ctx:
            for chunk in exports.export(ctx.session, fmt, user_id=user_id, period=period):
                yield chunk.encode()

    filename = f"milepost.{exports.FILE_EXTENSIONS[fmt]}"
    return StreamingResponse(
        body(), media_type=exports.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/exports/calendar.ics",
    summary="iCalendar feed of due dates, review deadlines and clearance dates",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **problem_responses(401)},
)
def get_calendar(user: UserDep, ctx: ReadCtx) -> Response:
    return Response(
        ical.calendar_for(ctx.session, user.id, now=ctx.now), media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="milepost.ics"'},
    )
