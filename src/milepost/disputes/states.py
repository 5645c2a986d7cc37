"""The dispute state machine and its negotiation rules (SPEC §2.3).

A dispute opens with a proposal (the opener's reason and proposed seller share). The other party
accepts it or counters; silence for `dispute_response_days` accepts the last proposal; no agreement
within `dispute_negotiation_days` of opening escalates to the operator, who resolves with any split.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from milepost.errors import Conflict, IllegalTransition, InvalidInput
from milepost.orders.terms import Terms


class DisputeStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class DisputeAction(StrEnum):
    COUNTER = "counter"
    ACCEPT = "accept"
    ACCEPT_BY_SILENCE = "accept_by_silence"
    ESCALATE = "escalate"
    RESOLVE = "resolve"


DISPUTE_TRANSITIONS: dict[tuple[DisputeStatus, DisputeAction], DisputeStatus] = {
    (DisputeStatus.OPEN, DisputeAction.COUNTER): DisputeStatus.OPEN,
    (DisputeStatus.OPEN, DisputeAction.ACCEPT): DisputeStatus.RESOLVED,
    (DisputeStatus.OPEN, DisputeAction.ACCEPT_BY_SILENCE): DisputeStatus.RESOLVED,
    (DisputeStatus.OPEN, DisputeAction.ESCALATE): DisputeStatus.ESCALATED,
    (DisputeStatus.OPEN, DisputeAction.RESOLVE): DisputeStatus.RESOLVED,
    (DisputeStatus.ESCALATED, DisputeAction.RESOLVE): DisputeStatus.RESOLVED,
    # Once escalated the parties may still settle between themselves.
    (DisputeStatus.ESCALATED, DisputeAction.ACCEPT): DisputeStatus.RESOLVED,
    (DisputeStatus.ESCALATED, DisputeAction.COUNTER): DisputeStatus.ESCALATED,
}


def next_dispute_status(current: DisputeStatus, action: DisputeAction) -> DisputeStatus:
    try:
        return DISPUTE_TRANSITIONS[(current, action)]
    except KeyError:
        hint = {
            DisputeStatus.OPEN: "the parties are negotiating",
            DisputeStatus.ESCALATED: "it is waiting for the operator",
            DisputeStatus.RESOLVED: "it is resolved",
        }[current]
        raise IllegalTransition(
            f"cannot {action.replace('_', ' ')} a dispute that is {current}: {hint}",
            code=f"dispute_{current}",
        ) from None


def check_seller_amount(seller_amount: object, milestone_amount: int) -> int:
    if isinstance(seller_amount, bool) or not isinstance(seller_amount, int):
        raise InvalidInput(
            "seller_amount must be a whole number of minor units",
            errors=[{"field": "seller_amount", "message": "must be a whole number of minor units"}],
        )
    if not 0 <= seller_amount <= milestone_amount:
        raise InvalidInput(
            f"seller_amount must be between 0 and the milestone's {milestone_amount}",
            errors=[
                {"field": "seller_amount", "message": f"must be between 0 and {milestone_amount}"}
            ],
        )
    return seller_amount


def check_may_answer(last_proposer_id: str, actor_id: str) -> None:
    """Only the party who did not make the last proposal may accept or counter it."""
    if last_proposer_id == actor_id:
        raise Conflict(
            "the last proposal is yours: wait for the other party to accept or counter it",
            code="own_proposal",
        )


def response_due_at(proposed_at: datetime, terms: Terms) -> datetime:
    return proposed_at + timedelta(days=terms.dispute_response_days)


def escalation_due_at(opened_at: datetime, terms: Terms) -> datetime:
    return opened_at + timedelta(days=terms.dispute_negotiation_days)
