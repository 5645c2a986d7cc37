"""Timer handlers of this package (imported by milepost.timers.handlers to register them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from milepost.changes import extensions
from milepost.timers.service import handles

if TYPE_CHECKING:
    from milepost.context import Ctx
    from milepost.timers.models import Timer


@handles("extension_silence")
def _extension_silence(ctx: Ctx, timer: Timer) -> str:
    assert timer.subject_id
    return extensions.accept_by_silence(ctx, extension_id=timer.subject_id)
