"""Plan validation: the milestones of a proposal, every violation reported at once."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from milepost.errors import InvalidInput
from milepost.money import MAX_AMOUNT, is_known_currency, major_unit

MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_CRITERION = 500
MAX_CRITERIA = 30
MAX_DUE_DAYS = 365
MAX_BRIEF = 20_000


@dataclass(frozen=True, slots=True)
class PlanLimits:
    max_milestones: int = 20
    min_milestone_major: int = 5  # in the currency's major unit: 5.00 USD, 5 JPY, 5.000 BHD
    max_revisions: int = 10

    def min_amount(self, currency: str) -> int:
        return self.min_milestone_major * major_unit(currency)


@dataclass(frozen=True, slots=True)
class MilestoneSpec:
    """One milestone of a plan as the parties agree it (amount in minor units)."""

    title: str
    amount: int
    due_days: int
    revisions: int
    description: str = ""
    acceptance_criteria: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "acceptance_criteria": list(self.acceptance_criteria),
            "amount": self.amount,
            "due_days": self.due_days,
            "revisions": self.revisions,
        }


def text_problem(value: object, *, max_len: int, required: bool = False) -> str | None:
    """Why a text field is unacceptable, or None. Tabs and newlines are fine; other controls are not."""
    if not isinstance(value, str):
        return "must be text"
    if required and not value.strip():
        return "must not be empty"
    if len(value) > max_len:
        return f"must be at most {max_len} characters"
    # Cc covers C0, DEL and the C1 range (U+0080–U+009F); Cs are lone surrogates, which no database
    # can store as UTF-8 (PostgreSQL would fail with a 500 instead of a clear 422).
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in value):
        return "must not contain NUL or other control characters"
    return None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_plan(
    currency: str,
    milestones: list[dict[str, Any]],
    *,
    default_revisions: int,
    limits: PlanLimits = PlanLimits(),
) -> list[MilestoneSpec]:
    """Turn raw milestone dicts into specs, or raise InvalidInput listing every problem."""
    problems: list[dict[str, str]] = []

    def problem(where: str, message: str) -> None:
        problems.append({"field": where, "message": message})

    if not is_known_currency(currency):
        problem("currency", f"{currency!r} is not an ISO 4217 currency code")
    if not isinstance(milestones, list) or not milestones:
        problem("milestones", "a plan needs at least one milestone")
        raise InvalidInput("the plan is invalid", errors=problems)
    if len(milestones) > limits.max_milestones:
        problem("milestones", f"a plan has at most {limits.max_milestones} milestones")

    min_amount = limits.min_amount(currency) if is_known_currency(currency) else 1
    specs: list[MilestoneSpec] = []
    total = 0
    for i, raw in enumerate(milestones[: limits.max_milestones + 50]):
        at = f"milestones[{i}]"
        if not isinstance(raw, dict):
            problem(at, "must be an object")
            continue
        title = raw.get("title")
        if (why := text_problem(title, max_len=MAX_TITLE, required=True)) is not None:
            problem(f"{at}.title", why)
        description = raw.get("description") or ""
        if (why := text_problem(description, max_len=MAX_DESCRIPTION)) is not None:
            problem(f"{at}.description", why)
        criteria = raw.get("acceptance_criteria") or []
        if not isinstance(criteria, list | tuple):
            problem(f"{at}.acceptance_criteria", "must be a list of statements")
            criteria = []
        elif len(criteria) > MAX_CRITERIA:
            problem(f"{at}.acceptance_criteria", f"at most {MAX_CRITERIA} statements")
        for j, criterion in enumerate(criteria):
            why = text_problem(criterion, max_len=MAX_CRITERION, required=True)
            if why is not None:
                problem(f"{at}.acceptance_criteria[{j}]", why)
        amount = raw.get("amount")
        if not _is_int(amount):
            problem(f"{at}.amount", "must be a whole number of minor units (e.g. cents)")
        elif amount <= 0:
            problem(f"{at}.amount", "must be positive")
        elif amount > MAX_AMOUNT:
            problem(f"{at}.amount", "is too large")
        elif amount < min_amount:
            problem(f"{at}.amount", f"must be at least {min_amount} minor units of {currency}")
        else:
            total += amount
        due_days = raw.get("due_days")
        if not _is_int(due_days) or not 1 <= due_days <= MAX_DUE_DAYS:
            problem(f"{at}.due_days", f"must be a whole number of days from 1 to {MAX_DUE_DAYS}")
        revisions = raw.get("revisions")
        if revisions is None:
            revisions = default_revisions
        if not _is_int(revisions) or not 0 <= revisions <= limits.max_revisions:
            problem(f"{at}.revisions", f"must be a whole number from 0 to {limits.max_revisions}")
        if not problems:
            specs.append(
                MilestoneSpec(
                    title=str(title).strip(),
                    description=str(description),
                    acceptance_criteria=tuple(str(c).strip() for c in criteria),
                    amount=int(amount),  # type: ignore[arg-type]
                    due_days=int(due_days),  # type: ignore[arg-type]
                    revisions=int(revisions),
                )
            )
    if total > MAX_AMOUNT:
        problem("milestones", "the total of the plan does not fit in 64 bits")
    if problems:
        raise InvalidInput("the plan is invalid", errors=problems)
    return specs
