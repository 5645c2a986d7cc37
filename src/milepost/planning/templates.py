"""Plan templates by kind of work, stored as JSON data files next to this module.

A template gives a milestone split as shares of the total (basis points summing to 10 000), with
example acceptance criteria; `instantiate` turns it into a concrete plan for a total and a currency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from milepost.errors import InvalidInput, NotFound
from milepost.money import MAX_AMOUNT, is_known_currency
from milepost.planning.split import split_by_weights

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class TemplateMilestone:
    title: str
    description: str
    acceptance_criteria: tuple[str, ...]
    share_bps: int
    due_days: int
    revisions: int


@dataclass(frozen=True, slots=True)
class Template:
    kind: str
    title: str
    description: str
    milestones: tuple[TemplateMilestone, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "milestones": [
                {"title": m.title, "description": m.description,
                 "acceptance_criteria": list(m.acceptance_criteria), "share_bps": m.share_bps,
                 "due_days": m.due_days, "revisions": m.revisions}
                for m in self.milestones
            ],
        }


def _load(path: Path) -> Template:
    data = json.loads(path.read_text(encoding="utf-8"))
    milestones = tuple(
        TemplateMilestone(
            title=m["title"], description=m.get("description", ""),
            acceptance_criteria=tuple(m.get("acceptance_criteria", [])),
            share_bps=int(m["share_bps"]), due_days=int(m["due_days"]), revisions=int(m["revisions"]),
        )
        for m in data["milestones"]
    )
    if sum(m.share_bps for m in milestones) != 10_000:
        raise ValueError(f"template {path.name}: shares must sum to 10000 bps")
    return Template(kind=data["kind"], title=data["title"], description=data["description"],
                    milestones=milestones)


@cache
def all_templates() -> dict[str, Template]:
    """Every template, by kind, in a stable order."""
    found = (_load(p) for p in sorted(TEMPLATE_DIR.glob("*.json")))
    return {t.kind: t for t in found}


def get_template(kind: str) -> Template:
    template = all_templates().get(kind) if isinstance(kind, str) else None
    if template is None:
        raise NotFound(f"no template {kind!r}; known kinds: {', '.join(all_templates())}",
                       code="template_not_found")
    return template


def instantiate(kind: str, *, total: int, currency: str) -> list[dict[str, Any]]:
    """The template as a plan's milestones for `total` minor units of `currency` (amounts sum exactly)."""
    template = get_template(kind)
    problems = []
    if not is_known_currency(currency):
        problems.append({"field": "currency", "message": "must be an ISO 4217 currency code, e.g. USD"})
    if isinstance(total, bool) or not isinstance(total, int) or not 0 < total <= MAX_AMOUNT:
        problems.append({"field": "total", "message": "must be a positive whole number of minor units"})
    if problems:
        raise InvalidInput("cannot fill the template", errors=problems)
    amounts = split_by_weights(total, [m.share_bps for m in template.milestones])
    return [
        {"title": m.title, "description": m.description,
         "acceptance_criteria": list(m.acceptance_criteria), "amount": amount,
         "due_days": m.due_days, "revisions": m.revisions}
        for m, amount in zip(template.milestones, amounts, strict=True)
    ]
