"""Reports: a seller's balances + forecast for 10k open milestones.

One seller owns every order of the dataset (each clone has milestone 1 delivered and milestone 2
funded, not started), so n/2 orders give n open milestones. Timed, in one read transaction, what
`GET /v1/balances` and `GET /v1/forecast` compute with their default parameters: `balances_for`,
`seller_forecast` (totals over every line + the first page of `DEFAULT_LINES` lines) and
`buyer_forecast`. JSON serialisation is not timed. Nothing is cached between repeats but the
viewer's calendar (the day starts of a zone around a date: pure, `forecast._local_days`), as in a
running server.
"""

from __future__ import annotations

import time
from typing import Any

from bench import dataset as ds
from bench.common import Workspace, log, median
from bench.reports import dataset_for_reports


def forecast(ws: Workspace, sizes: Any) -> dict[str, float]:
    from milepost.cashflow import forecast as cf_forecast
    from milepost.cashflow import service as cf_service

    n_orders = sizes.forecast_milestones // 2
    url, tpl = dataset_for_reports(ws, n_orders, pairs=1, stem="forecast")
    seller = ds.seller_id(tpl, 1, pairs=1)
    rt = ws.runtime(url)
    times = []
    lines = 0
    try:
        for _ in range(max(5, sizes.repeats * 3)):
            start = time.perf_counter()
            with rt.reading() as ctx:
                cf_service.balances_for(ctx.session, seller)
                fc = cf_forecast.seller_forecast(ctx.session, seller, now=ctx.now, tz="UTC",
                                                 limit=cf_forecast.DEFAULT_LINES, after=None)
                cf_forecast.buyer_forecast(ctx.session, seller, now=ctx.now)
            times.append(time.perf_counter() - start)
            lines = fc.line_count or len(fc.lines)
    finally:
        rt.db.dispose()
    ws.drop(url)
    log(
        f"forecast for {sizes.forecast_milestones:,} open milestones ({lines} lines): "
        f"{1000 * median(times):.1f} ms"
    )
    return {
        "reports.forecast_10k_ms": round(1000 * median(times), 2),
        "reports.forecast.open_milestones": sizes.forecast_milestones,
        "reports.forecast.lines": lines,
        "reports.forecast.page_lines": cf_forecast.DEFAULT_LINES,
    }
