"""Operator pages: the disputes queue with every proposal, a resolve form, and the ledger audit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from milepost.accounts.models import User
from milepost.disputes import repository as disputes_repo
from milepost.disputes import service as disputes
from milepost.errors import InvalidInput, NotFound
from milepost.ledger.audit import run_audit
from milepost.money import Money
from milepost.orders import repository as orders_repo
from milepost.web.routing import FormDep, OperatorDep, RuntimeDep, WebRoute, flash, redirect
from milepost.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _context(runtime: Any) -> dict[str, Any]:
    queue = []
    with runtime.reading() as ctx:
        people: dict[str, User | None] = {}

        def person(uid: str) -> User | None:
            if uid not in people:
                people[uid] = ctx.session.get(User, uid)
            return people[uid]

        for d in disputes_repo.open_disputes(ctx.session):
            order = orders_repo.get_order(ctx.session, d.order_id)
            if order is None:
                continue
            milestone = next((m for m in orders_repo.milestones_of(ctx.session, order.id)
                              if m.id == d.milestone_id), None)
            proposals = disputes_repo.proposals_of(ctx.session, d.id)
            queue.append({"d": d, "order": order, "m": milestone, "proposals": proposals,
                          "buyer": person(order.buyer_id), "seller": person(order.seller_id),
                          "opened_by": person(d.opened_by_id)})
        report = run_audit(ctx.session)
    # Escalated disputes first: they wait for the operator; then the oldest.
    queue.sort(key=lambda item: (item["d"].status != "escalated", item["d"].opened_at))
    return {"queue": queue, "audit": report, "people": people, "errors": {}, "form": {}}


@router.get("/operator", response_class=HTMLResponse)
def operator_page(request: Request, runtime: RuntimeDep, user: OperatorDep) -> Response:
    return render(request, "operator.html", _context(runtime))


@router.post("/operator/disputes/{dispute_id}/resolve", response_class=HTMLResponse)
def resolve(request: Request, runtime: RuntimeDep, user: OperatorDep, form: FormDep,
            dispute_id: str) -> Response:
    raw = str(form.get("seller_amount", ""))
    try:
        with runtime.reading() as ctx:
            found = disputes_repo.get_dispute(ctx.session, dispute_id)
            order = orders_repo.get_order(ctx.session, found.order_id) if found else None
        if found is None or order is None:
            raise NotFound("dispute not found")
        try:
            amount = Money.parse(raw, order.currency).amount
        except (ValueError, TypeError) as exc:
            raise InvalidInput("the amount is invalid", errors=[
                {"field": "seller_amount", "message": str(exc) if raw.strip() else "enter an amount"}
            ]) from None
        with runtime.unit_of_work() as ctx:
            disputes.resolve(ctx, actor=user, dispute_id=dispute_id, seller_amount=amount,
                             note=str(form.get("note", "")))
    except InvalidInput as exc:
        context = _context(runtime)
        context.update({"errors": {e.get("field") or "seller_amount": e.get("message", "") for e in exc.errors},
                        "failed": dispute_id, "form": {"seller_amount": raw, "note": str(form.get("note", ""))}})
        return render(request, "operator.html", context, status_code=422)
    flash(request, f"Dispute on “{order.title}” resolved; the money is settled.")
    return redirect("/operator")
