"""Dispute negotiation rules (SPEC §2.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from milepost.disputes.states import (
    check_may_answer,
    check_seller_amount,
    escalation_due_at,
    response_due_at,
)
from milepost.errors import Conflict, InvalidInput
from milepost.orders.terms import Terms

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("amount", [0, 1, 5000, 10_000])
def test_dispute_split_may_be_anything_from_nothing_to_everything(amount):
    assert check_seller_amount(amount, 10_000) == amount


@pytest.mark.parametrize("amount", [-1, 10_001, 1.5, "5000", True, None])
def test_dispute_split_outside_the_milestone_is_refused(amount):
    with pytest.raises(InvalidInput) as exc:
        check_seller_amount(amount, 10_000)
    assert exc.value.errors[0]["field"] == "seller_amount"


def test_party_cannot_answer_own_dispute_proposal():
    check_may_answer("buyer", "seller")
    with pytest.raises(Conflict) as exc:
        check_may_answer("buyer", "buyer")
    assert exc.value.code == "own_proposal"


def test_silence_and_escalation_deadlines():
    terms = Terms(dispute_response_days=4, dispute_negotiation_days=7)
    assert response_due_at(NOW, terms) == NOW + timedelta(days=4)
    assert escalation_due_at(NOW, terms) == NOW + timedelta(days=7)
