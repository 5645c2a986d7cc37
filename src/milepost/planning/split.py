"""Splitting a total into milestone amounts, exactly to the minor unit.

Rounding rule (one rule for both helpers): every part first gets the floor of its exact share; the
minor units left over go one each to the first parts. So parts always sum to the total and an even
split differs by at most one minor unit between parts. Pure: standard library and `money` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from milepost.money import MAX_AMOUNT, split_evenly

__all__ = ["split_by_weights", "split_evenly"]


def split_by_weights(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to positive integer `weights` (e.g. basis points of a template)."""
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= MAX_AMOUNT:
        raise ValueError("the total must be a whole, non-negative number of minor units")
    if not weights or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in weights):
        raise ValueError("weights must be positive integers")
    whole = sum(weights)
    parts = [total * w // whole for w in weights]
    left = total - sum(parts)  # < len(weights): each floor lost less than one unit
    for i in range(left):
        parts[i] += 1
    return parts
