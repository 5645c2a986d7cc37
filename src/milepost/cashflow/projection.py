"""The forecast projection: when each open milestone's money is expected, as two numbers that do
not depend on when the forecast is asked for (pure; SPEC §3).

The forecast rules (`forecast.estimate_order`, `forecast.milestone_lines`) date every line from
`now`. Each date they use has the form ``max(P, now + Q)``:

* delivered: ``review_due_at`` (no `now` term), or ``now + review`` when it has no review deadline;
* in progress: ``max(due_at, now) + review = max(due_at + review, now + review)``;
* disputed: ``max(opened_at + negotiation, now)``, or ``now + max(negotiation, 0)`` with no dispute row;
* pending: each starts when the one before it is expected to be approved. With `d` = due + review
  days of a pending milestone, `S_i` their running sum in seq order and `F_j` the fixed date of a
  delivered / in-progress / disputed one, ``approved_i = S_i + max(now, max_{j ≤ i} (F_j − S_j))``.
  With ``max_{j ≤ i} (F_j − S_j) = max(Pb, now + Qb)`` that is
  ``max(S_i + Pb, now + S_i + max(0, Qb))``.

The maximum of two such forms is again one (``max(P1, P2), now + max(Q1, Q2)``), and adding a
constant shifts both terms, so an order's completion (the latest approval; `now` when nothing is
open) and every line's expected date (its approval — or the completion, for held money and orders
released on completion — plus clearance) is ``max(P, now + Q)`` too. `project_order` computes P and
Q of every line of one order, and `order_lines` the whole row the database keeps per line
(`cashflow.models.ScheduleRow`: amounts, certainty, P, Q, when it turns late): the forecast query
evaluates ``max(P, :now + Q)`` per row — no sort, no window over the order's milestones, no join.
A missing term is stored as `NEVER`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple, Protocol

from milepost.clock import as_utc
from milepost.money import seller_fee
from milepost.orders.states import MilestoneStatus, OrderStatus
from milepost.orders.terms import ReleaseMode

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
# The stored value of a missing term: far enough below any instant that ``now + NEVER`` (and
# ``NEVER`` itself) never wins a maximum, far enough above -2**63 that the sum cannot overflow.
NEVER = -(2**62)
CLOSED = (MilestoneStatus.APPROVED, MilestoneStatus.RESOLVED, MilestoneStatus.CANCELLED)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(at: datetime) -> int:
    """Microseconds since 1970 UTC: exact, the number the database computes from the column."""
    return (as_utc(at) - _EPOCH) // timedelta(microseconds=1)


class OrderTerms(Protocol):
    """The order's terms the dates depend on (an `Order` row has them)."""

    release: str
    review_days: int
    clearance_days: int
    dispute_negotiation_days: int


class MilestoneFacts(Protocol):
    """One milestone's state the dates depend on (a `Milestone` row has it)."""

    id: str
    seq: int
    status: str
    due_days: int
    due_at: datetime | None
    review_due_at: datetime | None
    held_for_seller_amount: int


class Expected(NamedTuple):
    """The instant ``max(base, now + lag)`` in epoch microseconds; None: the term is absent."""

    base: int | None
    lag: int | None

    def at(self, now_us: int) -> int:
        """The instant itself, asked at `now_us` (what the forecast query computes)."""
        return max(NEVER if self.base is None else self.base, now_us + (NEVER if self.lag is None else self.lag))

    def later(self, other: Expected) -> Expected:
        """The later of two instants, whatever `now` is."""
        return Expected(_max(self.base, other.base), _max(self.lag, other.lag))

    def plus(self, us: int) -> Expected:
        return Expected(None if self.base is None else self.base + us, None if self.lag is None else self.lag + us)

    def stored(self) -> tuple[int, int]:
        """(forecast_base_us, forecast_lag_us) as the columns hold them."""
        return (NEVER if self.base is None else self.base, NEVER if self.lag is None else self.lag)


NOW = Expected(None, 0)


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def _fixed_approval(terms: OrderTerms, m: MilestoneFacts, dispute_opened_at: datetime | None) -> Expected:
    """When a delivered, in-progress or disputed milestone is expected to be approved."""
    review = terms.review_days * DAY_US
    if m.status == MilestoneStatus.DELIVERED:
        return Expected(None, review) if m.review_due_at is None else Expected(epoch_us(m.review_due_at), None)
    if m.status == MilestoneStatus.IN_PROGRESS:
        return Expected(None if m.due_at is None else epoch_us(m.due_at) + review, review)
    negotiation = terms.dispute_negotiation_days * DAY_US  # disputed
    if dispute_opened_at is None:
        return Expected(None, max(negotiation, 0))
    return Expected(epoch_us(dispute_opened_at) + negotiation, 0)


def project_order(
    terms: OrderTerms,
    milestones: Iterable[MilestoneFacts],
    dispute_opened_at: Mapping[str, datetime] | None = None,
) -> dict[str, tuple[int, int] | None]:
    """{milestone id: (forecast_base_us, forecast_lag_us)} for every milestone of one order, from its
    terms, all its milestones and the opening time of each disputed milestone's open dispute.

    None for a milestone that has no forecast line: disputed (excluded from the forecast), or
    closed without money held for the seller.
    """
    opened = dispute_opened_at or {}
    ordered = sorted(milestones, key=lambda m: m.seq)
    running = 0  # S: due + review of the pending milestones so far
    best = Expected(None, None)  # max over the fixed approvals so far of F_j − S_j
    approved: dict[str, Expected] = {}
    for m in ordered:
        if m.status in CLOSED:
            continue
        if m.status == MilestoneStatus.PENDING:
            running += (m.due_days + terms.review_days) * DAY_US
            approved[m.id] = Expected(None if best.base is None else best.base + running,
                                      running + max(0, best.lag if best.lag is not None else 0))
        else:
            fixed = _fixed_approval(terms, m, opened.get(m.id))
            approved[m.id] = fixed
            best = best.later(fixed.plus(-running))
    completion = NOW
    if approved:
        completion = Expected(None, None)
        for instant in approved.values():
            completion = completion.later(instant)
    clearance = terms.clearance_days * DAY_US
    on_completion = terms.release == ReleaseMode.ON_COMPLETION
    result: dict[str, tuple[int, int] | None] = {}
    for m in ordered:
        closed = m.status in CLOSED
        if m.status == MilestoneStatus.DISPUTED or (closed and (m.held_for_seller_amount or 0) <= 0):
            result[m.id] = None
            continue
        approval = completion if closed or on_completion else approved[m.id]
        result[m.id] = approval.plus(clearance).stored()
    return result


# ---------------------------------------------------------------------------------------------
# The rows of the schedule table: every forecast line of an open order, and its excluded ones
# ---------------------------------------------------------------------------------------------

OPEN_ORDER_STATUSES = (OrderStatus.AGREED, OrderStatus.ACTIVE)
# Certainty ranks (forecast.CERTAINTY_ORDER): held 2, awaiting_review 3, in_progress 4, not_started 5.
# A disputed milestone is EXCLUDED: listed apart, in no line and no total, until its dispute ends.
EXCLUDED = 99
_RANK = {MilestoneStatus.DELIVERED: 3, MilestoneStatus.IN_PROGRESS: 4, MilestoneStatus.PENDING: 5,
         MilestoneStatus.DISPUTED: EXCLUDED}


class OrderFacts(OrderTerms, Protocol):
    """Everything of the order a line needs (an `Order` row has it)."""

    status: str
    seller_fee_bps: int
    late_grace_hours: int


class MilestoneMoney(MilestoneFacts, Protocol):
    """A milestone's facts and cached money (a `Milestone` row has them)."""

    amount: int
    funded_amount: int
    released_amount: int
    refunded_amount: int


class Line(NamedTuple):
    """One row of the schedule: a forecast line of one milestone, or its exclusion (disputed)."""

    milestone_id: str
    seq: int
    rank: int  # certainty rank, or EXCLUDED
    gross: int  # what it will release (EXCLUDED: what is in escrow)
    fee: int  # the seller fee the release will take
    base_us: int  # expected at max(base_us, now + lag_us) (`NEVER` for a missing term)
    lag_us: int
    slides_from_us: int  # base_us − lag_us: from then on the date is now + lag_us
    late_after_us: int | None  # in progress with a due date: late once now is past this
    funded: bool


def in_escrow(m: MilestoneMoney) -> int:
    """The buyer's money held for the milestone now."""
    return m.funded_amount - m.released_amount - m.refunded_amount


def order_lines(
    order: OrderFacts,
    milestones: Iterable[MilestoneMoney],
    dispute_opened_at: Mapping[str, datetime] | None = None,
) -> list[Line]:
    """The schedule rows of one order, by seq: the rules of `forecast.milestone_lines` (a test holds
    them equal at any `now`) with each date kept as its two `now`-independent terms. None unless
    the order is agreed or active; a line only when it brings money (gross > 0), an EXCLUDED row for
    every disputed milestone."""
    if order.status not in OPEN_ORDER_STATUSES:
        return []
    ordered = sorted(milestones, key=lambda m: m.seq)
    projected = project_order(order, ordered, dispute_opened_at)
    lines = []
    for m in ordered:
        if m.status == MilestoneStatus.DISPUTED:
            lines.append(Line(m.id, m.seq, EXCLUDED, in_escrow(m), 0, NEVER, NEVER, 0, None, True))
            continue
        if m.status in CLOSED:
            gross = m.held_for_seller_amount
        elif m.funded_amount > 0:
            gross = in_escrow(m) - m.held_for_seller_amount
        else:
            gross = m.amount
        dated = projected[m.id]
        if gross <= 0 or dated is None:
            continue
        late_after = None
        if m.status == MilestoneStatus.IN_PROGRESS and m.due_at is not None:
            late_after = epoch_us(m.due_at) + order.late_grace_hours * HOUR_US
        lines.append(Line(m.id, m.seq, _RANK.get(MilestoneStatus(m.status), 2), gross,
                          seller_fee(gross, order.seller_fee_bps), dated[0], dated[1], dated[0] - dated[1], late_after,
                          m.status != MilestoneStatus.PENDING or m.funded_amount > 0))
    return lines


# The columns the rows are computed from, in the order `facts_of_rows` reads them: what the audit
# and the migration's backfill select, so both build the inputs of `order_lines` one way.
ORDER_FIELDS = ("id", "seller_id", "buyer_id", "currency", "status", "release", "review_days", "clearance_days",
                "dispute_negotiation_days", "seller_fee_bps", "late_grace_hours")
MILESTONE_FIELDS = ("id", "seq", "status", "due_days", "due_at", "review_due_at", "amount", "funded_amount",
                    "released_amount", "refunded_amount", "held_for_seller_amount")


def facts_of_rows(rows: Sequence[Sequence[Any]]) -> tuple[Any, list[Any]]:
    """One order and its milestones from plain rows of `ORDER_FIELDS` + `MILESTONE_FIELDS` values
    (one row per milestone, the order's values repeated), as `order_lines` takes them."""
    n = len(ORDER_FIELDS)
    order = SimpleNamespace(**dict(zip(ORDER_FIELDS, rows[0][:n], strict=True)))
    return order, [SimpleNamespace(**dict(zip(MILESTONE_FIELDS, r[n:], strict=True))) for r in rows]
