"""Dev only: move the service clock forward and run every timer that fell due (MILEPOST_DEV_CLOCK=1)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from milepost.api.deps import RuntimeDep, UserDep
from milepost.api.errors import problem_responses
from milepost.api.schemas import ClockIn, ClockOut
from milepost.errors import InvalidInput, NotFound

router = APIRouter(tags=["dev"])

# ISO 8601 durations without years or months (their length depends on the date): PnW, PnDTnHnMnS.
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d{1,4})W)?(?:(?P<days>\d{1,5})D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,8})M)?(?:(?P<seconds>\d{1,9})S)?)?$"
)
MAX_ADVANCE = timedelta(days=3660)


def parse_duration(text: str) -> timedelta:
    """`P9D`, `PT36H`, `P1W`, `P1DT2H30M` → timedelta. Years and months are refused (ambiguous)."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            "advance must be an ISO 8601 duration such as P9D, PT36H or P1DT2H30M (no years or months)",
            errors=[{"field": "advance", "message": "must be an ISO 8601 duration like P9D or PT36H"}],
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    delta = timedelta(**parts)
    if delta > MAX_ADVANCE:
        raise InvalidInput("advance is limited to 10 years at a time",
                           errors=[{"field": "advance", "message": "must be at most 3660 days"}])
    return delta


def dev_clock_enabled(runtime: RuntimeDep) -> None:
    # Checked before authentication: without the dev clock the endpoint does not exist at all.
    if not runtime.settings.dev_clock or not hasattr(runtime.clock, "advance"):
        raise NotFound("not found", code="not_found")


@router.post("/dev/clock", response_model=ClockOut, responses=problem_responses(401, 404, 422),
             summary="Dev only: move the clock forward and run what fell due (404 unless enabled)")
async def advance_clock(
    _enabled: Annotated[None, Depends(dev_clock_enabled)], body: ClockIn, runtime: RuntimeDep, user: UserDep
) -> dict[str, Any]:
    clock = runtime.clock
    delta = parse_duration(body.advance)
    from milepost.timers.worker import run_due

    def move() -> Any:
        clock.advance(delta)
        return run_due(runtime)

    result = await run_in_threadpool(move)
    return {"now": clock.now(), "advanced_by_seconds": int(delta.total_seconds()),
            "timers_fired": result.fired, "timers_failed": result.failed}
