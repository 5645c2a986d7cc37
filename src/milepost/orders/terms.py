"""Contract terms: the defaults and bounds of SPEC §8, and how requested terms resolve against them.

Terms are copied into the order when it is agreed, so later changes of installation defaults never
alter a running order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any, TypeGuard

from milepost.errors import InvalidInput


class FundingMode(StrEnum):
    UPFRONT = "upfront"
    PER_MILESTONE = "per_milestone"


class ReleaseMode(StrEnum):
    PER_MILESTONE = "per_milestone"
    ON_COMPLETION = "on_completion"


@dataclass(frozen=True, slots=True)
class Terms:
    funding: FundingMode = FundingMode.UPFRONT
    release: ReleaseMode = ReleaseMode.PER_MILESTONE
    review_days: int = 7
    revisions: int = 2
    revision_turnaround_days: int = 3
    clearance_days: int = 7
    kill_fee_bps: int = 0
    # Set by the operator, never by the parties:
    seller_fee_bps: int = 1000
    buyer_fee_bps: int = 0
    late_grace_hours: int = 24
    dispute_response_days: int = 4
    dispute_negotiation_days: int = 7
    extension_silence_hours: int = 48

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["funding"] = str(self.funding)
        data["release"] = str(self.release)
        return data


# Terms the parties may choose, with their inclusive bounds.
PARTY_TERM_BOUNDS: dict[str, tuple[int, int]] = {
    "review_days": (1, 30),
    "revisions": (0, 10),
    "revision_turnaround_days": (1, 30),
    "clearance_days": (0, 30),
    "kill_fee_bps": (0, 10_000),
}
OPERATOR_TERMS = frozenset(
    {
        "seller_fee_bps",
        "buyer_fee_bps",
        "late_grace_hours",
        "dispute_response_days",
        "dispute_negotiation_days",
        "extension_silence_hours",
    }
)
OPERATOR_TERM_BOUNDS: dict[str, tuple[int, int]] = {
    "seller_fee_bps": (0, 10_000),
    "buyer_fee_bps": (0, 10_000),
    "late_grace_hours": (0, 24 * 30),
    "dispute_response_days": (1, 60),
    "dispute_negotiation_days": (1, 120),
    "extension_silence_hours": (1, 24 * 30),
}
TERM_NAMES = frozenset(f.name for f in fields(Terms))


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check_operator_terms(terms: Terms) -> None:
    """Validate installation defaults (raised at start-up, so a bad setting never reaches an order)."""
    problems = []
    for name, (low, high) in {**PARTY_TERM_BOUNDS, **OPERATOR_TERM_BOUNDS}.items():
        value = getattr(terms, name)
        if not _is_int(value) or not low <= value <= high:
            problems.append({"field": name, "message": f"must be an integer from {low} to {high}"})
    if problems:
        raise InvalidInput("invalid installation defaults", errors=problems)


def resolve_terms(requested: dict[str, Any] | None, defaults: Terms) -> Terms:
    """Terms for a proposal: what the party asked for, the installation defaults for the rest.

    Operator terms (fees, dispute windows) always come from the defaults; asking to set them is an
    error rather than being silently ignored. Every problem is reported at once.
    """
    if requested is not None and not isinstance(requested, dict):
        raise InvalidInput(
            "the terms are invalid", errors=[{"field": "terms", "message": "must be an object"}]
        )
    requested = dict(requested or {})
    problems: list[dict[str, str]] = []
    chosen: dict[str, Any] = {}
    for name, value in requested.items():
        field = f"terms.{name}"
        if name in OPERATOR_TERMS:
            if value is None or value == getattr(defaults, name):
                continue
            problems.append({"field": field, "message": "is set by the operator, not by the parties"})
        elif name == "funding":
            if value is None:
                continue
            try:
                chosen[name] = FundingMode(value)
            except ValueError:
                problems.append({"field": field, "message": "must be 'upfront' or 'per_milestone'"})
        elif name == "release":
            if value is None:
                continue
            try:
                chosen[name] = ReleaseMode(value)
            except ValueError:
                problems.append(
                    {"field": field, "message": "must be 'per_milestone' or 'on_completion'"}
                )
        elif name in PARTY_TERM_BOUNDS:
            if value is None:
                continue
            low, high = PARTY_TERM_BOUNDS[name]
            if not _is_int(value) or not low <= value <= high:
                problems.append({"field": field, "message": f"must be an integer from {low} to {high}"})
            else:
                chosen[name] = value
        else:
            problems.append({"field": field, "message": "is not a known term"})
    if problems:
        raise InvalidInput("the terms are invalid", errors=problems)
    return replace(defaults, **chosen)


def terms_from_dict(data: dict[str, Any]) -> Terms:
    """Rebuild stored terms (a plan version's snapshot); unknown keys from newer versions are ignored."""
    values = {k: v for k, v in data.items() if k in TERM_NAMES}
    if "funding" in values:
        values["funding"] = FundingMode(values["funding"])
    if "release" in values:
        values["release"] = ReleaseMode(values["release"])
    return Terms(**values)
