"""Change orders, extensions and reviews in the web app.

The rules live in `milepost.changes` and `milepost.reviews`; these views parse forms, call the
services inside one unit of work, and answer POST → 303 with a flash, or re-render with the errors
next to their fields.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from milepost.accounts.models import User
from milepost.changes import extensions
from milepost.changes import repository as changes_repo
from milepost.changes import service as changes
from milepost.errors import InvalidInput
from milepost.money import Money, buyer_fee
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.models import Milestone
from milepost.orders.states import MilestoneStatus
from milepost.reviews import service as reviews
from milepost.web.orders import _order_with_errors
from milepost.web.planning import change_lines
from milepost.web.routing import FormDep, RuntimeDep, UserDep, WebRoute, flash, redirect
from milepost.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

ERROR_FIELD = re.compile(r"^(add|update)\[(\d+)\](?:\.(\w+))?(?:\[\d+\])?$")
CHANGEABLE = (MilestoneStatus.PENDING, MilestoneStatus.IN_PROGRESS)


# ---------------------------------------------------------------------------------------------
# Change orders: a form of the changeable milestones, a preview of the money, then the proposal
# ---------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _parse_change(form: FormData, milestones: list[Milestone], currency: str,
                  problems: list[dict[str, str]]) -> tuple[dict[str, Any], list[str]]:
    """The form's fields → service operations; only fields that differ from now become updates.

    Returns the operations and, per `update[i]`, the milestone id it names (to put the service's
    errors back next to the right fields).
    """
    add: list[dict[str, Any]] = []
    remove: list[str] = []
    update: list[dict[str, Any]] = []
    update_ids: list[str] = []
    for m in milestones:
        if m.milestone_status not in CHANGEABLE:
            continue
        p = f"ms.{m.id}"
        if m.milestone_status == MilestoneStatus.PENDING and form.get(f"{p}.remove") == "1":
            remove.append(m.id)
            continue
        changed: dict[str, Any] = {}
        raw_amount = str(form.get(f"{p}.amount", "")).strip()
        if raw_amount:
            try:
                amount = Money.parse(raw_amount, currency).amount
                if amount != m.amount:
                    changed["amount"] = amount
            except (ValueError, TypeError) as exc:
                problems.append({"field": f"{p}.amount", "message": str(exc)})
        raw_due = str(form.get(f"{p}.due_days", "")).strip()
        if raw_due:
            if re.fullmatch(r"\d{1,4}", raw_due):
                if int(raw_due) != m.due_days:
                    changed["due_days"] = int(raw_due)
            else:
                problems.append({"field": f"{p}.due_days", "message": "must be a whole number of days"})
        if f"{p}.criteria" in form:
            criteria = _lines(str(form.get(f"{p}.criteria", "")))
            if criteria != list(m.acceptance_criteria):
                changed["acceptance_criteria"] = criteria
        if f"{p}.description" in form:
            description = str(form.get(f"{p}.description", "")).strip()
            if description != (m.description or "").strip():
                changed["description"] = description
        if changed:
            update.append({"milestone_id": m.id, **changed})
            update_ids.append(m.id)
    title = str(form.get("add.title", "")).strip()
    add_amount = str(form.get("add.amount", "")).strip()
    if title or add_amount:
        spec: dict[str, Any] = {"title": title, "description": "",
                                "acceptance_criteria": _lines(str(form.get("add.criteria", ""))),
                                "amount": 1, "due_days": 1}
        try:
            spec["amount"] = Money.parse(add_amount, currency).amount
        except (ValueError, TypeError) as exc:
            problems.append({"field": "add.amount", "message": str(exc) if add_amount else "enter an amount"})
        raw_due = str(form.get("add.due_days", "")).strip()
        if re.fullmatch(r"\d{1,4}", raw_due):
            spec["due_days"] = int(raw_due)
        else:
            problems.append({"field": "add.due_days", "message": "must be a whole number of days"})
        add.append(spec)
    return {"add": add, "remove": remove, "update": update}, update_ids


def _change_errors(exc: InvalidInput, update_ids: list[str]) -> dict[str, str]:
    """The service names fields `update[0].amount`, `add[0].title`; the form names them by milestone."""
    result: dict[str, str] = {}
    for e in exc.errors:
        key, message = e.get("field") or "", e.get("message", "")
        if (m := ERROR_FIELD.match(key)) is not None:
            kind, index, name = m.group(1), int(m.group(2)), m.group(3) or ""
            name = "criteria" if name == "acceptance_criteria" else name
            if kind == "add":
                key = f"add.{name}" if name else "add.title"
            elif index < len(update_ids):
                key = f"ms.{update_ids[index]}.{name or 'amount'}"
        result.setdefault(key, message)
    if not result:
        result[""] = exc.message
    return result


def _change_context(runtime: Any, user: User, order_id: str) -> dict[str, Any]:
    with runtime.reading() as ctx:
        order, role = orders.load_order(ctx, order_id, user)
        orders.require_party(role, "propose a change")
        milestones = list(orders_repo.milestones_of(ctx.session, order.id))
    return {"order": order, "role": str(role), "milestones": milestones,
            "changeable": [m for m in milestones if m.milestone_status in CHANGEABLE],
            "errors": {}, "form": {}, "preview": None}


def _preview(runtime: Any, order_id: str, user: User, operations: dict[str, Any]) -> dict[str, Any]:
    """What the change would do to the totals and the escrow, computed by the change service's own
    planner on the milestones as they are now (read-only: nothing is written)."""
    with runtime.reading() as ctx:
        order, _ = orders.load_order(ctx, order_id, user)
        milestones = list(orders_repo.milestones_of(ctx.session, order.id))
        plan = changes._plan_change(ctx, order, milestones, operations)
        fee = buyer_fee(plan.escrow_delta, order.buyer_fee_bps) if plan.escrow_delta > 0 else 0
        return {"total_before": plan.total_before, "total_after": plan.total_after,
                "escrow_delta": plan.escrow_delta, "buyer_fee": fee,
                "lines": change_lines(operations, {m.id: m for m in milestones}),
                "fund_later": sum(s["amount"] for s in plan.additions) if not plan.fund_additions else 0}


@router.get("/orders/{order_id}/changes/new", response_class=HTMLResponse)
def change_form(request: Request, runtime: RuntimeDep, user: UserDep, order_id: str) -> Response:
    return render(request, "change.html", _change_context(runtime, user, order_id))


@router.post("/orders/{order_id}/changes/new", response_class=HTMLResponse)
def propose_change(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep,
                   order_id: str) -> Response:
    context = _change_context(runtime, user, order_id)
    order = context["order"]
    context["form"] = {k: v for k, v in form.items() if isinstance(v, str)}
    problems: list[dict[str, str]] = []
    operations, update_ids = _parse_change(form, context["milestones"], order.currency, problems)
    reason = str(form.get("reason", ""))
    action = str(form.get("_action", "preview"))
    try:
        if problems:
            raise InvalidInput("the change is invalid", errors=problems)
        if action != "submit":
            context["preview"] = _preview(runtime, order_id, user, operations)
            if not reason.strip():
                context["errors"] = {"reason": "say why, for the other party (required to send)"}
            return render(request, "change.html", context)
        with runtime.unit_of_work() as ctx:
            change = changes.propose_change(ctx, actor=user, order_id=order_id, reason=reason,
                                            **operations)
            change_id = change.id
    except InvalidInput as exc:
        context["errors"] = _change_errors(exc, update_ids)
        for p in problems:
            context["errors"][p["field"]] = p["message"]
        return render(request, "change.html", context, status_code=422)
    flash(request, "Change proposed. The other party can accept or decline it.")
    return redirect(f"/orders/{order_id}#change-{change_id}")


def _change_order_id(runtime: Any, user: User, change_id: str) -> str:
    with runtime.reading() as ctx:
        return changes.get_change(ctx, actor=user, change_id=change_id).order_id


@router.post("/changes/{change_id}/accept")
def accept_change(request: Request, runtime: RuntimeDep, user: UserDep, change_id: str) -> Response:
    with runtime.unit_of_work() as ctx:
        change = changes.accept_change(ctx, actor=user, change_id=change_id)
        order_id, version, delta = change.order_id, change.resulting_plan_version, change.escrow_delta_amount
    money = ("" if not delta else " Escrow was topped up." if delta > 0
             else " The difference was refunded to the buyer.")
    flash(request, f"Change accepted: the plan is now version {version}.{money}")
    return redirect(f"/orders/{order_id}")


@router.post("/changes/{change_id}/decline", response_class=HTMLResponse)
def decline_change(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep,
                   change_id: str) -> Response:
    order_id = _change_order_id(runtime, user, change_id)
    try:
        with runtime.unit_of_work() as ctx:
            changes.decline_change(ctx, actor=user, change_id=change_id, note=str(form.get("note", "")))
    except InvalidInput as exc:
        return _order_with_errors(request, runtime, user, order_id, exc, form, f"cdecline-{change_id}")
    flash(request, "Change declined. The plan stays as it was.")
    return redirect(f"/orders/{order_id}")


# ---------------------------------------------------------------------------------------------
# Extensions
# ---------------------------------------------------------------------------------------------


@router.post("/orders/{order_id}/milestones/{milestone_id}/extensions", response_class=HTMLResponse)
def request_extension(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep, order_id: str,
                      milestone_id: str) -> Response:
    raw_days = str(form.get("days", "")).strip()
    try:
        if not re.fullmatch(r"\d{1,3}", raw_days):
            raise InvalidInput("the extension request is invalid", errors=[
                {"field": "days", "message": f"must be a whole number from 1 to {extensions.MAX_EXTENSION_DAYS}"}])
        with runtime.unit_of_work() as ctx:
            ext = extensions.request_extension(ctx, actor=user, order_id=order_id, milestone_id=milestone_id,
                                               days=int(raw_days), reason=str(form.get("reason", "")))
            days = ext.days
    except InvalidInput as exc:
        return _order_with_errors(request, runtime, user, order_id, exc, form, f"extend-{milestone_id}")
    flash(request, f"Asked the buyer for {days} more day{'s' if days != 1 else ''}.")
    return redirect(f"/orders/{order_id}")


def _extension_order_id(runtime: Any, user: User, extension_id: str) -> str:
    with runtime.reading() as ctx:
        return extensions.get_extension(ctx, actor=user, extension_id=extension_id).order_id


@router.post("/extensions/{extension_id}/accept")
def accept_extension(request: Request, runtime: RuntimeDep, user: UserDep, extension_id: str) -> Response:
    with runtime.unit_of_work() as ctx:
        ext = extensions.accept_extension(ctx, actor=user, extension_id=extension_id)
        order_id, days = ext.order_id, ext.days
    flash(request, f"Extension accepted: the milestone is due {days} day{'s' if days != 1 else ''} later.")
    return redirect(f"/orders/{order_id}")


@router.post("/extensions/{extension_id}/decline", response_class=HTMLResponse)
def decline_extension(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep,
                      extension_id: str) -> Response:
    order_id = _extension_order_id(runtime, user, extension_id)
    try:
        with runtime.unit_of_work() as ctx:
            extensions.decline_extension(ctx, actor=user, extension_id=extension_id,
                                         note=str(form.get("note", "")))
    except InvalidInput as exc:
        return _order_with_errors(request, runtime, user, order_id, exc, form, f"xdecline-{extension_id}")
    flash(request, "Extension declined. The due date stays as it was.")
    return redirect(f"/orders/{order_id}")


# ---------------------------------------------------------------------------------------------
# Reviews
# ---------------------------------------------------------------------------------------------


@router.post("/orders/{order_id}/reviews", response_class=HTMLResponse)
def leave_review(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep, order_id: str) -> Response:
    raw = str(form.get("rating", "")).strip()
    try:
        if raw not in ("1", "2", "3", "4", "5"):
            raise InvalidInput("the review is invalid",
                               errors=[{"field": "rating", "message": "choose a rating from 1 to 5"}])
        with runtime.unit_of_work() as ctx:
            reviews.leave_review(ctx, actor=user, order_id=order_id, rating=int(raw),
                                 text=str(form.get("text", "")))
    except InvalidInput as exc:
        return _order_with_errors(request, runtime, user, order_id, exc, form, "review")
    flash(request, "Thank you: your review is saved and shows in your history together.")
    return redirect(f"/orders/{order_id}#reviews")


def pending_for(session: Any, user: User, order_ids: list[str]) -> dict[str, dict[str, list[Any]]]:
    """Change orders and extension requests waiting for this user's answer, by order."""
    result: dict[str, dict[str, list[Any]]] = {}
    for order_id in order_ids:
        open_changes = [c for c in changes_repo.open_changes_of(session, order_id)
                        if c.proposed_by_id != user.id]
        open_ext = [x for x in changes_repo.extensions_of(session, order_id)
                    if x.status == "requested" and x.requested_by_id != user.id]
        if open_changes or open_ext:
            result[order_id] = {"changes": open_changes, "extensions": open_ext}
    return result

