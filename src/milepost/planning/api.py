"""Planning aids over HTTP: templates, the split helper, plan lint, relationship history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field

from milepost.api.deps import RuntimeDep, UserDep
from milepost.api.errors import problem_responses
from milepost.api.schemas import Amount, Currency, Email, Input, Int, TermsIn, Text
from milepost.errors import InvalidInput
from milepost.money import MAX_AMOUNT
from milepost.orders.plan import (
    MAX_CRITERIA,
    MAX_CRITERION,
    MAX_DESCRIPTION,
    MAX_DUE_DAYS,
    MAX_TITLE,
)
from milepost.planning import relationships, templates
from milepost.planning.split import split_evenly

router = APIRouter(tags=["planning"])
READ = problem_responses(401, 404, 422)


class DraftMilestone(Input):
    """A milestone as typed so far in the plan builder: every field may still be missing."""

    title: Text(MAX_TITLE) = ""  # type: ignore[valid-type]
    description: Text(MAX_DESCRIPTION) = ""  # type: ignore[valid-type]
    acceptance_criteria: Annotated[list[Text(MAX_CRITERION)], Field(max_length=MAX_CRITERIA)] = []  # type: ignore[valid-type]
    amount: Int(0, MAX_AMOUNT) | None = None  # type: ignore[valid-type]
    due_days: Int(0, MAX_DUE_DAYS) | None = None  # type: ignore[valid-type]
    revisions: Int(0, 10) | None = None  # type: ignore[valid-type]


class LintIn(Input):
    counterparty_email: Email | None = None
    currency: Currency
    terms: TermsIn | None = None
    milestones: Annotated[list[DraftMilestone], Field(max_length=100)]


class SplitIn(Input):
    total: Amount
    parts: Int(1, 100)  # type: ignore[valid-type]
    currency: Currency
    due_days: Int(1, MAX_DUE_DAYS) = 7  # type: ignore[valid-type]
    title: Text(MAX_TITLE - 10, min_length=1) = "Milestone"  # type: ignore[valid-type]


@router.post("/plans/lint", responses=READ,
             summary="Warnings for a draft plan, judged against your history with the counterparty")
def lint(body: LintIn, runtime: RuntimeDep, user: UserDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        result = relationships.lint(
            ctx, actor=user, currency=body.currency,
            milestones=[m.model_dump() for m in body.milestones],
            counterparty_email=body.counterparty_email,
            terms=body.terms.model_dump(exclude_none=True) if body.terms else None,
        )
        return result


@router.get("/plans/templates", summary="Plan templates by kind of work")
def list_templates(user: UserDep) -> dict[str, Any]:
    return {"items": [t.summary() for t in templates.all_templates().values()]}


@router.get("/plans/templates/{kind}", responses=READ,
            summary="One template; with total and currency, filled in as a plan")
def get_template(
    kind: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z_]+$")],
    user: UserDep,
    total: Annotated[int | None, Query(ge=1, le=MAX_AMOUNT)] = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")] = None,
) -> dict[str, Any]:
    template = templates.get_template(kind)
    out = template.summary()
    if total is not None or currency is not None:
        if total is None or currency is None:
            raise InvalidInput("give both total and currency to fill the template",
                               errors=[{"field": "total" if total is None else "currency",
                                        "message": "is required with the other"}])
        out["currency"] = currency
        out["total"] = total
        out["plan"] = templates.instantiate(kind, total=total, currency=currency)
    return out


@router.post("/plans/split", responses=READ,
             summary="N equal milestones from a total; the remainder goes one unit each to the first")
def split(body: SplitIn, user: UserDep) -> dict[str, Any]:
    amounts = split_evenly(body.total, body.parts)
    return {
        "currency": body.currency, "total": body.total, "amounts": amounts,
        "milestones": [{"title": f"{body.title} {i}", "description": "", "acceptance_criteria": [],
                        "amount": a, "due_days": body.due_days} for i, a in enumerate(amounts, start=1)],
    }


@router.get("/relationships/{email}", responses=READ,
            summary="Your history with another user and the plan shape it suggests")
def relationship(email: Annotated[str, Path(min_length=3, max_length=254)], runtime: RuntimeDep,
                 user: UserDep) -> dict[str, Any]:
    with runtime.reading() as ctx:
        return relationships.relationship(ctx, actor=user, counterparty_email=email)
