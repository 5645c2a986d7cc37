"""What each kind of timer does when it fires. Every handler re-checks the state first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from milepost.changes import timers as change_timers  # noqa: F401  (registers extension_silence)
from milepost.disputes import service as disputes
from milepost.ledger import repository as ledger_repo
from milepost.ledger import service as ledger
from milepost.orders import service as orders
from milepost.timers.service import handles

if TYPE_CHECKING:
    from milepost.context import Ctx
    from milepost.timers.models import Timer


@handles("auto_approve")
def _auto_approve(ctx: Ctx, timer: Timer) -> str:
    assert timer.order_id and timer.milestone_id and timer.subject_id
    return orders.auto_approve(
        ctx, order_id=timer.order_id, milestone_id=timer.milestone_id, attempt=int(timer.subject_id)
    )


@handles("late")
def _late(ctx: Ctx, timer: Timer) -> str:
    assert timer.order_id and timer.milestone_id
    return orders.flag_late(ctx, order_id=timer.order_id, milestone_id=timer.milestone_id)


@handles("clear_lot")
def _clear_lot(ctx: Ctx, timer: Timer) -> str:
    assert timer.subject_id
    lot = ledger_repo.get_lot(ctx.session, timer.subject_id)
    if lot is None or lot.cleared_at is not None:
        return "noop: already cleared"
    ledger.clear_lot(ctx, lot)
    return "applied"


@handles("dispute_response")
def _dispute_response(ctx: Ctx, timer: Timer) -> str:
    assert timer.subject_id
    seq = int(timer.dedupe_key.rsplit(":", 1)[1])
    return disputes.accept_by_silence(ctx, dispute_id=timer.subject_id, proposal_seq=seq)


@handles("dispute_escalate")
def _dispute_escalate(ctx: Ctx, timer: Timer) -> str:
    assert timer.subject_id
    return disputes.escalate(ctx, dispute_id=timer.subject_id)
