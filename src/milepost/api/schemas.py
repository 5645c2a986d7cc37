"""Request and response shapes of the HTTP API (SPEC §5.1). Field names are part of the contract.

Input is strict: integers are JSON integers (never `false`, never "12"), text has bounded length and
no NUL or control characters, currencies are ISO 4217 codes, unknown fields are refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from milepost.money import MAX_AMOUNT, is_known_currency
from milepost.orders.plan import (
    MAX_BRIEF,
    MAX_CRITERIA,
    MAX_CRITERION,
    MAX_DESCRIPTION,
    MAX_DUE_DAYS,
    MAX_TITLE,
)


def _no_controls(value: str) -> str:
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in value):
        raise ValueError("must not contain NUL or other control characters")
    return value


def _known_currency(value: str) -> str:
    if not is_known_currency(value):
        raise ValueError("must be an ISO 4217 currency code, e.g. USD")
    return value


def Text(max_length: int, *, min_length: int = 0) -> Any:
    return Annotated[
        str, StringConstraints(max_length=max_length, min_length=min_length), AfterValidator(_no_controls)
    ]


def Int(ge: int, le: int) -> Any:
    return Annotated[int, Field(strict=True, ge=ge, le=le)]


Amount = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT, description="minor units (cents)")]
NonNegAmount = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT, description="minor units")]
Currency = Annotated[
    str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"), AfterValidator(_known_currency)
]
Email = Annotated[
    str,
    StringConstraints(min_length=6, max_length=254,
                      pattern=r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$"),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_controls)]
NewPassword = Annotated[str, StringConstraints(min_length=10, max_length=200), AfterValidator(_no_controls)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ----------------------------------------------------------------------------- auth


class RegisterIn(Input):
    email: Email
    password: NewPassword
    name: Text(200, min_length=1)  # type: ignore[valid-type]


class TokenIn(Input):
    email: Email
    password: Password


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    is_operator: bool
    created_at: datetime


class RegisterOut(BaseModel):
    user: UserOut
    token: str


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"


# ----------------------------------------------------------------------------- orders


class TermsIn(Input):
    """Terms the parties choose; omitted ones take the installation defaults. Fees are the operator's."""

    funding: Literal["upfront", "per_milestone"] | None = None
    release: Literal["per_milestone", "on_completion"] | None = None
    review_days: Int(1, 30) | None = None  # type: ignore[valid-type]
    revisions: Int(0, 10) | None = None  # type: ignore[valid-type]
    revision_turnaround_days: Int(1, 30) | None = None  # type: ignore[valid-type]
    clearance_days: Int(0, 30) | None = None  # type: ignore[valid-type]
    kill_fee_bps: Int(0, 10_000) | None = None  # type: ignore[valid-type]
    seller_fee_bps: Int(0, 10_000) | None = Field(None, description="read-only: must equal the operator's")
    buyer_fee_bps: Int(0, 10_000) | None = Field(None, description="read-only: must equal the operator's")


class MilestoneIn(Input):
    title: Text(MAX_TITLE, min_length=1)  # type: ignore[valid-type]
    description: Text(MAX_DESCRIPTION) = ""  # type: ignore[valid-type]
    acceptance_criteria: Annotated[list[Text(MAX_CRITERION, min_length=1)], Field(max_length=MAX_CRITERIA)] = []  # type: ignore[valid-type]
    amount: Amount
    due_days: Int(1, MAX_DUE_DAYS)  # type: ignore[valid-type]
    revisions: Int(0, 10) | None = None  # type: ignore[valid-type]


Milestones = Annotated[list[MilestoneIn], Field(min_length=1, max_length=100)]


class OrderCreate(Input):
    role: Literal["buyer", "seller"]
    counterparty_email: Email
    title: Text(MAX_TITLE, min_length=1)  # type: ignore[valid-type]
    brief: Text(MAX_BRIEF) = ""  # type: ignore[valid-type]
    currency: Currency
    terms: TermsIn | None = None
    milestones: Milestones


class ProposalCreate(Input):
    """A counter-proposal: a new plan version. Omitted milestones keep the current plan."""

    terms: TermsIn | None = None
    milestones: Milestones | None = None
    note: Text(MAX_DESCRIPTION) = ""  # type: ignore[valid-type]


class AcceptIn(Input):
    plan_version: Int(1, 1_000_000)  # type: ignore[valid-type]


class FundIn(Input):
    milestone_ids: Annotated[list[Id], Field(max_length=100)] | None = None


class DeliveryIn(Input):
    message: Text(MAX_DESCRIPTION, min_length=1)  # type: ignore[valid-type]


class RevisionIn(Input):
    reason: Text(MAX_DESCRIPTION, min_length=1)  # type: ignore[valid-type]


class CancelIn(Input):
    reason: Text(MAX_DESCRIPTION, min_length=1)  # type: ignore[valid-type]


class DisputeCreate(Input):
    reason: Text(MAX_DESCRIPTION, min_length=1)  # type: ignore[valid-type]
    seller_amount: NonNegAmount


class DisputeCounter(Input):
    seller_amount: NonNegAmount
    note: Text(MAX_DESCRIPTION) = ""  # type: ignore[valid-type]


class DisputeResolve(Input):
    seller_amount: NonNegAmount
    note: Text(MAX_DESCRIPTION) = ""  # type: ignore[valid-type]


class PartyOut(BaseModel):
    id: str
    name: str
    email: str


class TermsOut(BaseModel):
    funding: str
    release: str
    review_days: int
    revisions: int
    revision_turnaround_days: int
    clearance_days: int
    kill_fee_bps: int
    seller_fee_bps: int
    buyer_fee_bps: int
    late_grace_hours: int
    dispute_response_days: int
    dispute_negotiation_days: int


class MilestoneOut(BaseModel):
    id: str
    seq: int
    title: str
    description: str
    acceptance_criteria: list[str]
    amount: int
    due_days: int
    status: str
    revisions_allowed: int
    revisions_used: int
    started_at: datetime | None
    due_at: datetime | None
    delivered_at: datetime | None
    review_due_at: datetime | None
    approved_at: datetime | None
    ended_at: datetime | None
    funded: bool
    funded_amount: int
    released_amount: int
    refunded_amount: int
    in_escrow_amount: int
    is_late: bool


class DisputeProposalOut(BaseModel):
    id: str
    seq: int
    proposed_by: str
    role: str
    seller_amount: int
    note: str
    created_at: datetime


class DisputeOut(BaseModel):
    id: str
    order_id: str
    milestone_id: str
    status: str
    reason: str
    opened_by: str
    opened_at: datetime
    escalated_at: datetime | None
    resolved_at: datetime | None
    resolved_seller_amount: int | None
    resolved_how: str | None
    proposals: list[DisputeProposalOut]


class FileOut(BaseModel):
    id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    url: str


class DeliveryOut(BaseModel):
    id: str
    milestone_id: str
    attempt: int
    message: str
    revision_reason: str | None
    created_at: datetime
    files: list[FileOut]


class PlanVersionOut(BaseModel):
    version: int
    proposed_by: str
    terms: dict[str, Any]
    milestones: list[dict[str, Any]]
    note: str
    created_at: datetime


class OrderSummary(BaseModel):
    id: str
    status: str
    buyer: PartyOut
    seller: PartyOut
    your_role: str
    title: str
    brief: str
    currency: str
    terms: TermsOut
    plan_version: int
    proposed_by: str
    total_amount: int
    milestones: list[MilestoneOut]
    created_at: datetime
    agreed_at: datetime | None
    ended_at: datetime | None


class OrderOut(OrderSummary):
    disputes: list[DisputeOut]
    deliveries: list[DeliveryOut]
    plan_versions: list[PlanVersionOut]


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class EventOut(BaseModel):
    id: str
    type: str
    order_id: str | None
    milestone_id: str | None
    actor_id: str | None
    actor_role: str
    payload: dict[str, Any]
    created_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


# ----------------------------------------------------------------------------- money


class PayoutCreate(Input):
    amount: Amount
    currency: Currency


class PayoutOut(BaseModel):
    id: str
    amount: int
    currency: str
    status: str
    provider: str
    provider_ref: str
    created_at: datetime


class PayoutPage(BaseModel):
    items: list[PayoutOut]
    next_cursor: str | None


class LedgerEntryOut(BaseModel):
    id: str
    transfer_id: str
    kind: str
    account: str
    currency: str
    amount: int
    order_id: str | None
    milestone_id: str | None
    memo: str
    created_at: datetime


class LedgerPage(BaseModel):
    items: list[LedgerEntryOut]
    next_cursor: str | None


# ----------------------------------------------------------------------------- operator, dev


class AuditCheckOut(BaseModel):
    name: str
    ok: bool
    description: str
    violations: list[str]
    violation_count: int


class AuditOut(BaseModel):
    ok: bool
    transfers: int
    postings: int
    checks: list[AuditCheckOut]


class WebhookCreate(Input):
    url: Annotated[
        str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")
    ]
    event_types: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=60, pattern=r"^[a-z_.*]+$")]],
        Field(max_length=50),
    ] = ["*"]


class WebhookOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime
    secret: str | None = Field(None, description="shown only when the endpoint is created")


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


class WebhookAttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[WebhookAttemptOut]


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None


class ClockIn(Input):
    advance: Annotated[
        str, StringConstraints(min_length=2, max_length=40),
    ] = Field(description="ISO 8601 duration, e.g. P9D, PT36H, P1DT2H30M")


class ClockOut(BaseModel):
    now: datetime
    advanced_by_seconds: int
    timers_fired: int
    timers_failed: int
