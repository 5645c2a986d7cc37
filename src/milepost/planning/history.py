"""What two parties' history says about the shape of their next plan. Pure: no I/O.

`relationships.py` fills a `PairHistory` from the database; `recommend` turns it into a plan shape
that the plan builder shows and the lint checks against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class TrustLevel(StrEnum):
    NEW = "new"  # never finished an order together
    CAUTION = "caution"  # disputes, or more cancelled than completed
    KNOWN = "known"  # one good order together
    TRUSTED = "trusted"  # repeat pair with a clean record


@dataclass(frozen=True, slots=True)
class ReviewSummary:
    order_id: str
    author_id: str
    author_role: str
    rating: int
    text: str
    created_at: str


@dataclass(frozen=True, slots=True)
class PairHistory:
    """Orders between two users that got past agreement, from the asking user's point of view."""

    orders_total: int = 0
    orders_completed: int = 0
    orders_cancelled: int = 0
    orders_disputed: int = 0  # orders with at least one dispute
    orders_open: int = 0
    milestones_finished: int = 0
    revisions_used: int = 0
    milestones_delivered: int = 0
    milestones_on_time: int = 0
    extensions_granted: int = 0
    change_orders_accepted: int = 0
    reviews: tuple[ReviewSummary, ...] = field(default_factory=tuple)

    @property
    def revisions_per_milestone(self) -> float | None:
        return round(self.revisions_used / self.milestones_finished, 2) if self.milestones_finished else None

    @property
    def on_time_rate(self) -> float | None:
        """Share of delivered milestones whose first delivery came by the due date."""
        return round(self.milestones_on_time / self.milestones_delivered, 2) if self.milestones_delivered else None

    @property
    def average_rating(self) -> float | None:
        return round(sum(r.rating for r in self.reviews) / len(self.reviews), 2) if self.reviews else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reviews"] = [asdict(r) for r in self.reviews]
        data["revisions_per_milestone"] = self.revisions_per_milestone
        data["on_time_rate"] = self.on_time_rate
        data["average_rating"] = self.average_rating
        return data


@dataclass(frozen=True, slots=True)
class Recommendation:
    level: TrustLevel
    min_milestones: int
    max_first_share_bps: int  # the first milestone's share of the total, at most
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"level": str(self.level), "min_milestones": self.min_milestones,
                "max_first_share_bps": self.max_first_share_bps, "message": self.message}


NEW_PAIR = Recommendation(
    TrustLevel.NEW, 3, 2000,
    "You have not finished an order together yet: use several milestones (3 or more) with a small "
    "first one (at most 20% of the total), so both of you can test the collaboration cheaply.",
)


def recommend(history: PairHistory) -> Recommendation:
    """New pair → several milestones with a small first one; trusted repeat pair → fewer is fine."""
    troubled = history.orders_disputed > 0 or (
        history.orders_cancelled > 0 and history.orders_cancelled >= history.orders_completed
    )
    if troubled:
        return Recommendation(
            TrustLevel.CAUTION, 3, 2000,
            "Earlier orders between you were disputed or cancelled: keep milestones small, the first "
            "one at most 20% of the total, with clear acceptance criteria for each.",
        )
    if history.orders_completed == 0:
        return NEW_PAIR
    rating_ok = history.average_rating is None or history.average_rating >= 4
    on_time_ok = history.on_time_rate is None or history.on_time_rate >= 0.8
    if history.orders_completed >= 2 and rating_ok and on_time_ok:
        return Recommendation(
            TrustLevel.TRUSTED, 1, 10_000,
            f"You have completed {history.orders_completed} orders together without a dispute: fewer, "
            "larger milestones are fine.",
        )
    return Recommendation(
        TrustLevel.KNOWN, 2, 3500,
        "You have worked together before: two or more milestones, the first at most 35% of the "
        "total, keep both sides comfortable.",
    )
