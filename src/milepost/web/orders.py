"""Order pages: the plan builder (new order and counter-proposal), the order page and its actions.

Every action calls the order or dispute service inside one unit of work; the rules live there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData, UploadFile

from milepost.accounts.models import User
from milepost.disputes import repository as disputes_repo
from milepost.disputes import service as disputes
from milepost.errors import InvalidInput, MilepostError, NotFound
from milepost.events import repository as events_repo
from milepost.money import Money, buyer_fee, is_known_currency, major_unit, split_evenly
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.lifecycle import Role, is_late
from milepost.orders.models import Milestone, Order
from milepost.orders.states import TERMINAL_MILESTONE, MilestoneStatus, OrderStatus
from milepost.orders.terms import Terms
from milepost.planning import relationships, templates
from milepost.planning.history import NEW_PAIR
from milepost.web.planning import LINT_TITLES, order_extras, relationship_panel
from milepost.web.routing import FormDep, RuntimeDep, UserDep, WebRoute, flash, redirect
from milepost.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "PLN", "INR", "BRL", "JPY", "BHD"]
ROW_FIELD = re.compile(r"^milestones\[(\d{1,3})\]\.(title|description|criteria|amount|due_days|revisions)$")
ROW_KEYS = ("title", "description", "criteria", "amount", "due_days", "revisions")
TERM_HELP = {
    "funding": "Upfront: the buyer pays the whole order into escrow at the start. Per milestone: "
               "each milestone is funded before it starts.",
    "release": "Per milestone: approved money is released at once. On completion: everything is "
               "released together when the order ends.",
    "review_days": "Days the buyer has to review a delivery; silence approves it.",
    "revisions": "Revisions the buyer may ask for, per milestone (default for new rows).",
    "revision_turnaround_days": "Days the seller gets at least, after a revision request.",
    "clearance_days": "Days released money clears before the seller can pay it out.",
    "kill_fee_bps": "Share of the running milestone the seller keeps if the buyer cancels it "
                    "(not when it is late).",
}


CRITERION_FIELD = re.compile(r"^(milestones\[\d+\])\.acceptance_criteria(?:\[(\d+)\])?$")


def _errors(exc: InvalidInput) -> dict[str, str]:
    """Field → message; a problem with one acceptance criterion shows on the criteria box."""
    result: dict[str, str] = {}
    for e in exc.errors:
        key, message = e.get("field") or "", e.get("message", "")
        if (m := CRITERION_FIELD.match(key)) is not None:
            key = f"{m.group(1)}.criteria"
            if m.group(2) is not None:
                message = f"statement {int(m.group(2)) + 1} {message}"
        result.setdefault(key, message)
    return result


# ---------------------------------------------------------------------------------------------
# Plan builder
# ---------------------------------------------------------------------------------------------


def blank_row(n: int, revisions: int | None = None) -> dict[str, str]:
    return {"title": "", "description": "", "criteria": "", "amount": "", "due_days": "7",
            "revisions": "" if revisions is None else str(revisions)}


def rows_from_form(form: FormData) -> list[dict[str, str]]:
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for key, value in form.multi_items():
        match = ROW_FIELD.match(key)
        if match and isinstance(value, str):
            found[int(match.group(1))][match.group(2)] = value
    return [{k: found[i].get(k, "") for k in ROW_KEYS} for i in sorted(found)]


def rows_from_plan(milestones: list[dict[str, Any]], currency: str) -> list[dict[str, str]]:
    return [
        {"title": m["title"], "description": m.get("description", ""),
         "criteria": "\n".join(m.get("acceptance_criteria", [])),
         "amount": Money(m["amount"], currency).to_decimal().to_eng_string(),
         "due_days": str(m["due_days"]), "revisions": str(m.get("revisions", ""))}
        for m in milestones
    ]


def terms_from_form(form: FormData, problems: list[dict[str, str]]) -> dict[str, Any]:
    terms: dict[str, Any] = {}
    for name in ("funding", "release"):
        if form.get(f"terms.{name}"):
            terms[name] = str(form.get(f"terms.{name}"))
    for name in ("review_days", "revisions", "revision_turnaround_days", "clearance_days"):
        raw = str(form.get(f"terms.{name}", "")).strip()
        if raw:
            if re.fullmatch(r"\d{1,4}", raw):
                terms[name] = int(raw)
            else:
                problems.append({"field": f"terms.{name}", "message": "must be a whole number"})
    raw = str(form.get("terms.kill_fee_percent", "")).strip()
    if raw:
        try:
            bps = Decimal(raw) * 100
            if not bps.is_finite() or bps != bps.to_integral_value():
                raise InvalidOperation
            terms["kill_fee_bps"] = int(bps)
        except (InvalidOperation, ValueError):
            problems.append({"field": "terms.kill_fee_bps",
                             "message": "must be a percentage with at most two decimals"})
    return terms


def milestones_from_rows(
    rows: list[dict[str, str]], currency: str, problems: list[dict[str, str]]
) -> list[dict[str, Any]]:
    money_currency = currency if is_known_currency(currency) else "USD"
    result: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        at = f"milestones[{i}]"
        amount: Any = None
        try:
            amount = Money.parse(row["amount"] or "", money_currency).amount
        except (ValueError, TypeError) as exc:
            problems.append({"field": f"{at}.amount",
                             "message": str(exc) if row["amount"].strip() else "enter an amount"})
        due: Any = row["due_days"].strip()
        due = int(due) if re.fullmatch(r"\d{1,4}", due) else None
        if due is None:
            problems.append({"field": f"{at}.due_days", "message": "must be a whole number of days"})
        revisions: Any = row["revisions"].strip()
        if revisions == "":
            revisions = None
        elif re.fullmatch(r"\d{1,3}", revisions):
            revisions = int(revisions)
        else:
            problems.append({"field": f"{at}.revisions", "message": "must be a whole number"})
            revisions = None
        criteria = [line.strip() for line in row["criteria"].splitlines() if line.strip()]
        result.append({"title": row["title"], "description": row["description"],
                       "acceptance_criteria": criteria, "amount": amount if amount is not None else 1,
                       "due_days": due if due is not None else 1, "revisions": revisions})
    return result


def _row_total(rows: list[dict[str, str]], currency: str) -> int | None:
    if not is_known_currency(currency):
        return None
    total = 0
    for row in rows:
        try:
            total += Money.parse(row["amount"] or "0", currency).amount
        except (ValueError, TypeError):
            continue
    return total


def apply_builder_action(action: str, rows: list[dict[str, str]], form: FormData, currency: str,
                         revisions: int | None) -> list[str]:
    """Edits without JavaScript (and through htmx): add, remove, move rows, split a total evenly."""
    notes: list[str] = []
    if action == "add" and len(rows) < 20:
        rows.append(blank_row(len(rows) + 1, revisions))
    elif (m := re.fullmatch(r"(remove|up|down)-(\d{1,3})", action)) is not None:
        i = int(m.group(2))
        if m.group(1) == "remove" and 0 <= i < len(rows) and len(rows) > 1:
            rows.pop(i)
        elif m.group(1) == "up" and 0 < i < len(rows):
            rows[i - 1], rows[i] = rows[i], rows[i - 1]
        elif m.group(1) == "down" and 0 <= i < len(rows) - 1:
            rows[i + 1], rows[i] = rows[i], rows[i + 1]
    elif action == "template":
        kind = str(form.get("template", ""))
        try:
            total = Money.parse(str(form.get("split_total", "")).strip() or "0",
                                currency if is_known_currency(currency) else "USD")
            if total.amount <= 0:
                raise ValueError
            planned = templates.instantiate(kind, total=total.amount, currency=total.currency)
        except (ValueError, TypeError, MilepostError):
            notes.append("To use a template, choose one and enter the order's total.")
            return notes
        rows[:] = rows_from_plan(planned, total.currency)
        notes.append(f"Filled from the “{templates.get_template(kind).title}” template; "
                     "adjust titles, amounts and criteria to your project.")
    elif action == "split":
        count_raw = str(form.get("split_count", "")).strip()
        total_raw = str(form.get("split_total", "")).strip()
        try:
            count = int(count_raw)
            if not 1 <= count <= 20:
                raise ValueError
            total = Money.parse(total_raw, currency if is_known_currency(currency) else "USD")
            if total.amount <= 0:
                raise ValueError
        except (ValueError, TypeError):
            notes.append("To split, enter a positive total and a number of milestones from 1 to 20.")
            return notes
        while len(rows) < count:
            rows.append(blank_row(len(rows) + 1, revisions))
        del rows[count:]
        for row, part in zip(rows, split_evenly(total.amount, count), strict=True):
            row["amount"] = Money(part, total.currency).to_decimal().to_eng_string()
        notes.append(f"Split into {count} milestones; any remainder went to the first ones.")
    return notes


def _builder(request: Request, runtime: Any, user: User, *, mode: str, order: Order | None,
             values: dict[str, Any], terms: dict[str, Any], rows: list[dict[str, str]],
             errors: dict[str, str], notes: list[str] | None = None, status_code: int = 200,
             counterparty: str = "") -> Response:
    currency = values.get("currency", "USD")
    defaults: Terms = order.terms if order is not None else runtime.settings.default_terms
    lint, relationship = _lint_and_history(runtime, user, order, values.get("counterparty_email", ""),
                                           rows, currency, terms)
    return render(request, "plan_builder.html", {
        "templates": templates.all_templates(), "lint": lint, "lint_titles": LINT_TITLES,
        "relationship": relationship,
        "recommendation": relationship["recommendation"] if relationship else NEW_PAIR.as_dict(),
        "mode": mode, "order": order, "values": values, "terms": terms, "defaults": defaults,
        "rows": rows, "errors": errors, "notes": notes or [], "currencies": CURRENCIES,
        "term_help": TERM_HELP, "total": _row_total(rows, currency), "counterparty": counterparty,
        "min_amount_text": Money(runtime.settings.min_milestone_major * major_unit(currency), currency)
        .format(user.locale) if is_known_currency(currency) else "",
    }, status_code=status_code)


def _lint_and_history(runtime: Any, user: User, order: Order | None, email: str,
                      rows: list[dict[str, str]], currency: str,
                      terms: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The planning service's lint of a half-typed plan, and the relationship panel.

    Unreadable fields (a half-typed amount) are left out, never reported here: the lint is a
    helper while typing, validation happens when the plan is sent.
    """
    scratch: list[dict[str, str]] = []
    milestones = milestones_from_rows(rows, currency, scratch)
    bad = {p["field"] for p in scratch}
    for i, m in enumerate(milestones):
        if f"milestones[{i}].amount" in bad:
            m["amount"] = None
        if f"milestones[{i}].due_days" in bad:
            m["due_days"] = None
    wanted = {k: int(v) for k, v in terms.items()
              if k in ("review_days", "revisions", "revision_turnaround_days") and str(v).isdigit()}
    if order is not None:
        wanted = {**{k: getattr(order, k) for k in ("review_days", "revisions",
                                                    "revision_turnaround_days")}, **wanted}
    with runtime.reading() as ctx:
        other = _counterparty(ctx, order, user) if order is not None else None
        if order is None and email.strip():
            try:
                found = relationships.relationship(ctx, actor=user, counterparty_email=email)
                other = ctx.session.get(User, found["counterparty"]["id"])
            except (InvalidInput, NotFound):
                other = None
        panel = relationship_panel(ctx.session, user, other)
        lint_args: dict[str, Any] = {"actor": user, "milestones": milestones,
                                     "currency": currency if is_known_currency(currency) else "USD",
                                     "counterparty_email": other.email if other is not None else None}
        try:
            result = relationships.lint(ctx, terms=wanted or None, **lint_args)
        except InvalidInput:  # a term out of range: lint against the defaults meanwhile
            result = relationships.lint(ctx, **lint_args)
    return result["warnings"], panel


def _term_values(terms: Terms | dict[str, Any]) -> dict[str, Any]:
    data = terms.as_dict() if isinstance(terms, Terms) else dict(terms)
    if "kill_fee_bps" in data:
        data["kill_fee_percent"] = str(Decimal(data["kill_fee_bps"]) / 100)
    return data


def _terms_for_render(form: FormData) -> dict[str, Any]:
    keys = ("funding", "release", "review_days", "revisions", "revision_turnaround_days",
            "clearance_days", "kill_fee_percent")
    return {k: str(form.get(f"terms.{k}", "")) for k in keys}


@router.get("/orders/new", response_class=HTMLResponse)
def new_order_form(request: Request, runtime: RuntimeDep, user: UserDep, counterparty: str = "") -> Response:
    defaults = runtime.settings.default_terms
    values = {"role": "seller", "counterparty_email": counterparty[:254], "title": "", "brief": "",
              "currency": "USD"}
    rows = [blank_row(i) for i in range(1, 4)]
    return _builder(request, runtime, user, mode="new", order=None, values=values,
                    terms=_term_values(defaults), rows=rows, errors={})


@router.post("/orders/new", response_class=HTMLResponse)
def create_order(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep) -> Response:
    values = {k: str(form.get(k, "")) for k in ("role", "counterparty_email", "title", "brief", "currency")}
    rows = rows_from_form(form) or [blank_row(1)]
    action = str(form.get("_action", "submit"))
    terms_shown = _terms_for_render(form)
    if action != "submit":
        notes = apply_builder_action(action, rows, form, values["currency"], None)
        return _builder(request, runtime, user, mode="new", order=None, values=values,
                        terms=terms_shown, rows=rows, errors={}, notes=notes)
    problems: list[dict[str, str]] = []
    terms = terms_from_form(form, problems)
    milestones = milestones_from_rows(rows, values["currency"], problems)
    try:
        if problems:
            raise InvalidInput("the order is invalid", errors=problems)
        with runtime.unit_of_work() as ctx:
            order = orders.propose(
                ctx, actor=user, role=values["role"], counterparty_email=values["counterparty_email"],
                title=values["title"], brief=values["brief"], currency=values["currency"], terms=terms,
                milestones=milestones,
            )
            order_id = order.id
    except InvalidInput as exc:
        errors = _errors(exc)
        for p in problems:  # form-level parse problems win over the placeholder values sent
            errors[p["field"]] = p["message"]
        return _builder(request, runtime, user, mode="new", order=None, values=values,
                        terms=terms_shown, rows=rows, errors=errors, status_code=422)
    flash(request, "Proposal sent. The other party can now accept it or counter it.")
    return redirect(f"/orders/{order_id}")


@router.get("/orders/{order_id}/counter", response_class=HTMLResponse)
def counter_form(request: Request, runtime: RuntimeDep, user: UserDep, order_id: str) -> Response:
    with runtime.reading() as ctx:
        order, role = orders.load_order(ctx, order_id, user)
        orders.require_party(role, "counter a proposal")
        versions = orders_repo.plan_versions(ctx.session, order.id)
        other = _counterparty(ctx, order, user)
    if order.order_status != OrderStatus.PROPOSED:
        flash(request, "This order is no longer being negotiated.", "error")
        return redirect(f"/orders/{order.id}")
    current = versions[-1]
    values = {"currency": order.currency, "title": order.title, "note": ""}
    return _builder(request, runtime, user, mode="counter", order=order, values=values,
                    terms=_term_values(current.terms),
                    rows=rows_from_plan(current.milestones, order.currency), errors={},
                    counterparty=other.name if other else "")


@router.post("/orders/{order_id}/counter", response_class=HTMLResponse)
def counter(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep, order_id: str) -> Response:
    with runtime.reading() as ctx:
        order, _ = orders.load_order(ctx, order_id, user)
        other = _counterparty(ctx, order, user)
    values = {"currency": order.currency, "title": order.title, "note": str(form.get("note", ""))}
    rows = rows_from_form(form) or [blank_row(1)]
    action = str(form.get("_action", "submit"))
    terms_shown = _terms_for_render(form)
    common = {"mode": "counter", "order": order, "values": values, "terms": terms_shown,
              "counterparty": other.name if other else ""}
    if action != "submit":
        notes = apply_builder_action(action, rows, form, order.currency, None)
        return _builder(request, runtime, user, rows=rows, errors={}, notes=notes, **common)
    problems: list[dict[str, str]] = []
    terms = terms_from_form(form, problems)
    milestones = milestones_from_rows(rows, order.currency, problems)
    try:
        if problems:
            raise InvalidInput("the counter-proposal is invalid", errors=problems)
        with runtime.unit_of_work() as ctx:
            order = orders.counter(ctx, actor=user, order_id=order_id, milestones=milestones,
                                   terms=terms, note=values["note"])
            version = order.plan_version
    except InvalidInput as exc:
        errors = _errors(exc)
        for p in problems:
            errors[p["field"]] = p["message"]
        return _builder(request, runtime, user, rows=rows, errors=errors, status_code=422, **common)
    flash(request, f"Counter-proposal sent as plan version {version}.")
    return redirect(f"/orders/{order_id}")


# ---------------------------------------------------------------------------------------------
# Order page
# ---------------------------------------------------------------------------------------------


@dataclass
class MilestoneCard:
    m: Milestone
    deliveries: list[Any] = field(default_factory=list)
    files: dict[str, list[Any]] = field(default_factory=dict)
    dispute: Any = None
    proposals: list[Any] = field(default_factory=list)
    late: bool = False
    is_current: bool = False


def _counterparty(ctx: Any, order: Order, user: User) -> User | None:
    other = order.seller_id if order.buyer_id == user.id else order.buyer_id
    return ctx.session.get(User, other)  # type: ignore[no-any-return]


EVENT_TEXT = {
    "order.proposed": "proposed the plan",
    "order.countered": "countered with a new plan version",
    "order.agreed": "accepted the plan",
    "order.completed": "Order completed",
    "order.cancelled": "cancelled the order",
    "order.cancel_pending_dispute": "cancelled the rest; a disputed milestone is still open",
    "milestone.funded": "funded milestone",
    "milestone.started": "Milestone started",
    "milestone.delivered": "delivered milestone",
    "milestone.revision_requested": "asked for a revision of milestone",
    "milestone.approved": "approved milestone",
    "milestone.cancelled": "cancelled milestone",
    "milestone.late": "Milestone is late",
    "dispute.opened": "opened a dispute on milestone",
    "dispute.countered": "countered in the dispute",
    "dispute.escalated": "Dispute escalated to the operator",
    "dispute.resolved": "Dispute resolved",
    "transfer.fund": "Money in: paid into escrow",
    "transfer.release": "Money released to the seller (clearing)",
    "transfer.refund": "Money refunded to the buyer",
    "transfer.clear": "Money cleared: available to the seller",
    "transfer.payout": "Payout",
    "change.proposed": "proposed a change of the plan",
    "change.accepted": "accepted a change: new plan version",
    "change.declined": "declined a change of the plan",
    "change.superseded": "A change was superseded by another",
    "extension.requested": "asked for more days on milestone",
    "extension.accepted": "granted more days on milestone",
    "extension.declined": "declined more days on milestone",
    "extension.lapsed": "Extension request lapsed for milestone",
    "review.left": "left a review",
}


def _event_amount(event: Any) -> int | None:
    if event.type.startswith("transfer."):
        return sum(p["amount"] for p in event.payload.get("postings", []) if p["amount"] > 0)
    for key in ("amount", "seller_amount", "total_amount"):
        if isinstance(event.payload.get(key), int):
            return int(event.payload[key])
    return None


def order_page_context(runtime: Any, user: User, order_id: str) -> dict[str, Any]:
    now = runtime.clock.now()
    with runtime.reading() as ctx:
        order, role = orders.load_order(ctx, order_id, user)
        milestones = orders_repo.milestones_of(ctx.session, order.id)
        deliveries = orders_repo.deliveries_of(ctx.session, order.id)
        files = orders_repo.files_of(ctx.session, [d.id for d in deliveries])
        versions = orders_repo.plan_versions(ctx.session, order.id)
        dispute_rows = disputes_repo.disputes_of_order(ctx.session, order.id)
        proposals = {d.id: disputes_repo.proposals_of(ctx.session, d.id) for d in dispute_rows}
        events = events_repo.order_events(ctx.session, order.id, limit=500)
        people = {uid: ctx.session.get(User, uid) for uid in {order.buyer_id, order.seller_id}}
        for e in events:
            if e.actor_id and e.actor_id not in people:
                people[e.actor_id] = ctx.session.get(User, e.actor_id)
        extras = order_extras(ctx, order, user, role, list(milestones), people)
    files_by_delivery: dict[str, list[Any]] = defaultdict(list)
    for f in files:
        files_by_delivery[f.delivery_id].append(f)
    current = next((m for m in milestones if m.milestone_status not in TERMINAL_MILESTONE), None)
    cards = {m.id: MilestoneCard(m=m, late=is_late(m.milestone_status, m.due_at, now, order.terms),
                                 is_current=current is not None and m.id == current.id)
             for m in milestones}
    for d in deliveries:
        if d.milestone_id in cards:
            cards[d.milestone_id].deliveries.append(d)
            cards[d.milestone_id].files[d.id] = files_by_delivery.get(d.id, [])
    for d in dispute_rows:
        card = cards.get(d.milestone_id)
        if card is not None and (card.dispute is None or d.status != "resolved"):
            card.dispute, card.proposals = d, proposals[d.id]
    is_party = role in (Role.BUYER, Role.SELLER)
    open_order = order.order_status in (OrderStatus.AGREED, OrderStatus.ACTIVE)
    unfunded = [m for m in milestones if m.milestone_status == MilestoneStatus.PENDING and not m.is_funded]
    fund_next: list[Milestone] = []
    if role == Role.BUYER and open_order and unfunded:
        fund_next = unfunded if order.funding == "upfront" else unfunded[:1]
    fund_amount = sum(m.amount + buyer_fee(m.amount, order.buyer_fee_bps) for m in fund_next)
    escrow = sum(m.in_escrow_amount for m in milestones)
    released = sum(m.released_amount for m in milestones)
    refunded = sum(m.refunded_amount for m in milestones)
    return {
        "order": order, "role": str(role), "is_party": is_party, "milestones": milestones,
        "cards": [cards[m.id] for m in milestones], "versions": list(versions),
        "events": list(reversed(events)), "people": people, "event_text": EVENT_TEXT,
        "event_amount": _event_amount, "buyer": people.get(order.buyer_id),
        "seller": people.get(order.seller_id), "fund_next": fund_next, "fund_amount": fund_amount,
        "can_cancel": is_party and order.order_status in (OrderStatus.PROPOSED, OrderStatus.AGREED,
                                                           OrderStatus.ACTIVE),
        "escrow": escrow, "released": released, "refunded": refunded,
        "kill_fee_percent": Decimal(order.kill_fee_bps) / 100,
        "seller_fee_percent": Decimal(order.seller_fee_bps) / 100,
        **extras,
    }


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, runtime: RuntimeDep, user: UserDep, order_id: str) -> Response:
    return render(request, "order.html", order_page_context(runtime, user, order_id))


def _order_with_errors(request: Request, runtime: Any, user: User, order_id: str, exc: InvalidInput,
                       form: FormData, form_id: str) -> Response:
    context = order_page_context(runtime, user, order_id)
    context.update({"errors": _errors(exc), "failed_form": form_id,
                    "form": {k: v for k, v in form.items() if isinstance(v, str)}})
    return render(request, "order.html", context, status_code=422)


@router.post("/orders/{order_id}/accept")
def accept(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep, order_id: str) -> Response:
    version = str(form.get("plan_version", ""))
    with runtime.unit_of_work() as ctx:
        orders.accept(ctx, actor=user, order_id=order_id,
                      plan_version=int(version) if version.isdigit() else -1)
    flash(request, "Plan accepted. The order is agreed; the buyer funds it to start the work.")
    return redirect(f"/orders/{order_id}")


@router.post("/orders/{order_id}/fund")
def fund(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep, order_id: str) -> Response:
    ids = [str(v) for v in form.getlist("milestone_id") if isinstance(v, str)] or None
    with runtime.unit_of_work() as ctx:
        funded = orders.fund(ctx, actor=user, order_id=order_id, milestone_ids=ids)
        seqs = ", ".join(f"#{m.seq}" for m in funded)
    flash(request, f"Paid into escrow for milestone {seqs}. The seller can start.")
    return redirect(f"/orders/{order_id}")


async def _read_files(files: list[UploadFile], limit: int) -> list[orders.UploadedFile]:
    result = []
    total = 0
    for f in files:
        if not f.filename:
            continue
        data = await f.read(limit + 1)
        total += len(data)
        if total > limit:
            raise InvalidInput("the files are too large",
                               errors=[{"field": "files", "message": f"at most {limit // (1024 * 1024)} MB "
                                        "in total"}])
        result.append(orders.UploadedFile(filename=f.filename, content_type=f.content_type or "",
                                          data=data))
    return result


@router.post("/orders/{order_id}/milestones/{milestone_id}/deliver")
async def deliver(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep,
                  order_id: str, milestone_id: str) -> Response:
    from starlette.concurrency import run_in_threadpool

    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    try:
        files = await _read_files(uploads, runtime.settings.max_upload_bytes)

        def work() -> int:
            with runtime.unit_of_work() as ctx:
                delivery = orders.deliver(ctx, actor=user, order_id=order_id, milestone_id=milestone_id,
                                          message=str(form.get("message", "")), files=files)
                return delivery.attempt

        attempt = await run_in_threadpool(work)
    except InvalidInput as exc:
        return await run_in_threadpool(_order_with_errors, request, runtime, user, order_id, exc, form,
                                       f"deliver-{milestone_id}")
    flash(request, f"Delivered (attempt {attempt}). The buyer has been asked to review it.")
    return redirect(f"/orders/{order_id}")


@router.post("/orders/{order_id}/milestones/{milestone_id}/approve")
def approve(request: Request, runtime: RuntimeDep, user: UserDep, order_id: str, milestone_id: str) -> Response:
    with runtime.unit_of_work() as ctx:
        m = orders.approve(ctx, actor=user, order_id=order_id, milestone_id=milestone_id)
        seq = m.seq
    flash(request, f"Milestone #{seq} approved; its money is released to the seller.")
    return redirect(f"/orders/{order_id}")


@router.post("/orders/{order_id}/milestones/{milestone_id}/revision")
def request_revision(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep,
                     order_id: str, milestone_id: str) -> Response:
    try:
        with runtime.unit_of_work() as ctx:
            m = orders.request_revision(ctx, actor=user, order_id=order_id, milestone_id=milestone_id,
                                        reason=str(form.get("reason", "")))
            used, allowed = m.revisions_used, m.revisions_allowed
    except InvalidInput as exc:
        return _order_with_errors(request, runtime, user, order_id, exc, form, f"revise-{milestone_id}")
    flash(request, f"Revision requested ({used} of {allowed} used). The seller will re-deliver.")
    return redirect(f"/orders/{order_id}")


@router.get("/orders/{order_id}/files/{file_id}")
def download(runtime: RuntimeDep, user: UserDep, order_id: str, file_id: str) -> Response:
    with runtime.reading() as ctx:
        f, data = orders.delivery_file(ctx, actor=user, order_id=order_id, file_id=file_id)
    # Always a download, never rendered here: an uploaded HTML file must not run on this origin.
    return Response(data, media_type="application/octet-stream", headers={
        "content-disposition": f'attachment; filename="{f.filename}"',
        "cache-control": "private, no-store",
    })


# ---------------------------------------------------------------------------------------------
# Cancel and dispute: explain the money first, then confirm
# ---------------------------------------------------------------------------------------------


def _cancel_context(runtime: Any, user: User, order_id: str) -> dict[str, Any]:
    with runtime.reading() as ctx:
        order, role = orders.load_order(ctx, order_id, user)
        orders.require_party(role, "cancel an order")
        milestones = orders_repo.milestones_of(ctx.session, order.id)
        blocked: str | None = None
        decisions: list[Any] = []
        try:
            decisions = orders.cancel_preview(ctx, actor=user, order_id=order_id)
        except MilepostError as exc:
            blocked = exc.message
    by_seq = {m.seq: m for m in milestones}
    lines = [{"m": by_seq[d.seq], "seller": d.seller_amount, "refund": d.refund_amount,
              "late": is_late(by_seq[d.seq].milestone_status, by_seq[d.seq].due_at, runtime.clock.now(),
                              order.terms)}
             for d in decisions]
    untouched = [m for m in milestones if m.seq not in {d.seq for d in decisions}]
    return {"order": order, "role": str(role), "lines": lines, "blocked": blocked, "untouched": untouched,
            "total_seller": sum(d.seller_amount for d in decisions),
            "total_refund": sum(d.refund_amount for d in decisions),
            "kill_fee_percent": Decimal(order.kill_fee_bps) / 100, "errors": {}, "form": {}}


@router.get("/orders/{order_id}/cancel", response_class=HTMLResponse)
def cancel_form(request: Request, runtime: RuntimeDep, user: UserDep, order_id: str) -> Response:
    return render(request, "cancel.html", _cancel_context(runtime, user, order_id))


@router.post("/orders/{order_id}/cancel", response_class=HTMLResponse)
def cancel(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep, order_id: str) -> Response:
    try:
        with runtime.unit_of_work() as ctx:
            order = orders.cancel(ctx, actor=user, order_id=order_id, reason=str(form.get("reason", "")))
            status = order.status
    except InvalidInput as exc:
        context = _cancel_context(runtime, user, order_id)
        context.update({"errors": _errors(exc), "form": {"reason": str(form.get("reason", ""))}})
        return render(request, "cancel.html", context, status_code=422)
    flash(request, "Order cancelled; refunds are on their way to the buyer." if status == "cancelled"
          else "The rest of the order is cancelled; what was approved stays paid.")
    return redirect(f"/orders/{order_id}")


def _dispute_context(runtime: Any, user: User, order_id: str, milestone_id: str) -> dict[str, Any]:
    with runtime.reading() as ctx:
        order, role = orders.load_order(ctx, order_id, user)
        orders.require_party(role, "open a dispute")
        m = orders.find_milestone(orders_repo.milestones_of(ctx.session, order.id), milestone_id)
    return {"order": order, "m": m, "role": str(role), "errors": {}, "form": {}}


@router.get("/orders/{order_id}/milestones/{milestone_id}/dispute", response_class=HTMLResponse)
def dispute_form(request: Request, runtime: RuntimeDep, user: UserDep, order_id: str,
                 milestone_id: str) -> Response:
    return render(request, "dispute.html", _dispute_context(runtime, user, order_id, milestone_id))


def _parse_amount(raw: str, currency: str, field_name: str = "seller_amount") -> int:
    try:
        return Money.parse(raw or "", currency).amount
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the amount is invalid", errors=[
            {"field": field_name, "message": str(exc) if raw.strip() else "enter an amount"}]) from None


@router.post("/orders/{order_id}/milestones/{milestone_id}/dispute", response_class=HTMLResponse)
def open_dispute(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep, order_id: str,
                 milestone_id: str) -> Response:
    context = _dispute_context(runtime, user, order_id, milestone_id)
    try:
        amount = _parse_amount(str(form.get("seller_amount", "")), context["order"].currency)
        with runtime.unit_of_work() as ctx:
            disputes.open_dispute(ctx, actor=user, order_id=order_id, milestone_id=milestone_id,
                                  reason=str(form.get("reason", "")), seller_amount=amount)
    except InvalidInput as exc:
        context.update({"errors": _errors(exc),
                        "form": {k: str(form.get(k, "")) for k in ("reason", "seller_amount")}})
        return render(request, "dispute.html", context, status_code=422)
    flash(request, "Dispute opened. The milestone's money stays in escrow until it is settled.")
    return redirect(f"/orders/{order_id}")


@router.post("/disputes/{dispute_id}/accept")
def accept_dispute(request: Request, runtime: RuntimeDep, user: UserDep, dispute_id: str) -> Response:
    with runtime.unit_of_work() as ctx:
        d = disputes.accept(ctx, actor=user, dispute_id=dispute_id)
        order_id = d.order_id
    flash(request, "Proposal accepted: the dispute is resolved and the money is settled.")
    return redirect(f"/orders/{order_id}")


@router.post("/disputes/{dispute_id}/counter", response_class=HTMLResponse)
def counter_dispute(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep,
                    dispute_id: str) -> Response:
    with runtime.reading() as ctx:
        found = disputes_repo.get_dispute(ctx.session, dispute_id)
        if found is None:
            raise NotFound("dispute not found")
        order, _ = orders.load_order(ctx, found.order_id, user)
    try:
        amount = _parse_amount(str(form.get("seller_amount", "")), order.currency)
        with runtime.unit_of_work() as ctx:
            disputes.counter(ctx, actor=user, dispute_id=dispute_id, seller_amount=amount,
                             note=str(form.get("note", "")))
    except InvalidInput as exc:
        return _order_with_errors(request, runtime, user, order.id, exc, form, f"dcounter-{dispute_id}")
    flash(request, "Counter-proposal sent.")
    return redirect(f"/orders/{order.id}")
