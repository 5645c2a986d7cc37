"""Plan lint: warnings about a plan that is valid but likely to cause trouble. Pure: no I/O.

Each warning has a stable `code`, the milestone it concerns (1-based `seq`, or None for the whole
plan) and a short explanation that says why it matters and what to do. The lint is lenient: it
runs on half-typed plans in the plan builder and skips fields it cannot read (validation of the
plan itself is `orders.plan.validate_plan`'s job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from milepost.money import is_known_currency, major_unit, to_decimal_string
from milepost.orders.terms import Terms
from milepost.planning.history import NEW_PAIR, Recommendation, TrustLevel

# One milestone holding more than this share of the money is a concentration risk.
CONCENTRATION_BPS = 5000
# A one-milestone plan is flagged from this many minimum-milestone amounts up (100.00 USD by default).
SINGLE_MILESTONE_FLOOR = 20
# A plan running longer than this many days is long; it is unusually long when it also earns less
# per day than the operator's minimum milestone amount (5.00 by default) — or runs over a year.
LONG_PLAN_DAYS = 30
VERY_LONG_PLAN_DAYS = 365


@dataclass(frozen=True, slots=True)
class LintWarning:
    code: str
    message: str
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _share(part: int, total: int) -> int:
    return part * 10_000 // total if total else 0


def _pct(bps: int) -> str:
    return f"{bps / 100:.0f}%"


def lint_plan(
    milestones: Sequence[dict[str, Any]],
    *,
    currency: str,
    terms: Terms,
    recommendation: Recommendation = NEW_PAIR,
    min_milestone_major: int = 5,
) -> list[LintWarning]:
    """Every warning for the plan, in milestone order, plan-wide warnings last."""
    items = [m for m in milestones if isinstance(m, dict)]
    warnings: list[LintWarning] = []
    amounts = [_int(m.get("amount")) for m in items]
    known_amounts = [a for a in amounts if a is not None and a > 0]
    total = sum(known_amounts) if len(known_amounts) == len(items) else 0
    unit = major_unit(currency) if is_known_currency(currency) else 100

    def money(amount: int) -> str:
        return f"{to_decimal_string(amount, currency)} {currency}" if is_known_currency(currency) else str(amount)

    for seq, m in enumerate(items, start=1):
        criteria = m.get("acceptance_criteria")
        if not isinstance(criteria, list) or not any(isinstance(c, str) and c.strip() for c in criteria):
            warnings.append(LintWarning(
                "missing_acceptance_criteria",
                f"Milestone {seq} has no acceptance criteria: without checkable statements, approving "
                "or disputing it becomes a matter of opinion. Add a few statements the buyer can check.",
                seq,
            ))
        due_days = _int(m.get("due_days"))
        revisions = _int(m.get("revisions"))
        revisions = terms.revisions if revisions is None else revisions
        if due_days is not None and due_days > 0 and revisions > 0:
            # One day of work at the very least, plus the rework time each promised revision gives
            # the seller; the due date only moves when less than the turnaround is left.
            needed = 1 + revisions * terms.revision_turnaround_days
            if due_days < needed:
                warnings.append(LintWarning(
                    "due_days_too_tight",
                    f"Milestone {seq} allows {revisions} revision(s) but is due in {due_days} day(s): "
                    f"each revision gives the seller {terms.revision_turnaround_days} day(s) of rework "
                    f"(and the buyer up to {terms.review_days} days to review), so plan at least "
                    f"{needed} days or fewer revisions.",
                    seq,
                ))
    if total and len(items) >= 2:
        big_seq, big = max(enumerate(amounts, start=1), key=lambda pair: pair[1] or 0)
        assert big is not None
        if _share(big, total) > CONCENTRATION_BPS:
            warnings.append(LintWarning(
                "concentrated_amount",
                f"Milestone {big_seq} holds {_pct(_share(big, total))} of the money: a misunderstanding "
                "there costs most of the order, and the seller waits for most of the pay until it is "
                "approved. Split it into smaller milestones.",
                big_seq,
            ))
    if total and len(items) == 1 and total >= SINGLE_MILESTONE_FLOOR * min_milestone_major * unit:
        warnings.append(LintWarning(
            "single_milestone",
            f"The whole order ({money(total)}) is one milestone: the seller is paid only at the end and "
            "the buyer cannot stop after a first look. Split it into several milestones.",
            1,
        ))
    new_pair = recommendation.level in (TrustLevel.NEW, TrustLevel.CAUTION)
    if total and new_pair and len(items) >= 2 and amounts[0] is not None:
        first = _share(amounts[0], total)
        if first > recommendation.max_first_share_bps:
            warnings.append(LintWarning(
                "first_milestone_too_large",
                f"The first milestone is {_pct(first)} of the total. You have not finished an order "
                f"together yet, so keep it at most {_pct(recommendation.max_first_share_bps)}: a small "
                "first milestone lets both of you test the collaboration before much money is at stake.",
                1,
            ))
    if total and new_pair and len(items) < recommendation.min_milestones and len(items) >= 2:
        warnings.append(LintWarning(
            "few_milestones_for_new_pair",
            f"{len(items)} milestones for a pair without history: {recommendation.min_milestones} or "
            "more let each of you stop early at little cost.",
        ))
    days = [_int(m.get("due_days")) for m in items]
    if total and all(d is not None and d > 0 for d in days):
        total_days = sum(d for d in days if d is not None)
        per_day_floor = min_milestone_major * unit
        if total_days > VERY_LONG_PLAN_DAYS or (
            total_days > LONG_PLAN_DAYS and total < per_day_floor * total_days
        ):
            warnings.append(LintWarning(
                "long_for_amount",
                f"The plan runs {total_days} days (milestones run one after another) for "
                f"{money(total)}, about {money(total // total_days)} a day. Long, low-value plans are "
                "often abandoned half way: shorten the due days or check the amount.",
            ))
    return warnings
