"""Server-rendered web app: sign-in, the dashboard, the dev clock; the other pages live in sibling
modules (`orders`, `earnings`, `operator`) whose routers are included here.

Views are thin: they parse forms, call the same services as the API inside one unit of work, and
answer POST → 303 with a flash message, or re-render the form with errors next to the fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from milepost.accounts import service as accounts
from milepost.accounts.models import User
from milepost.accounts.throttle import TooManyAttempts, throttle_for
from milepost.clock import as_utc
from milepost.disputes import repository as disputes_repo
from milepost.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from milepost.orders import repository as orders_repo
from milepost.orders.models import Milestone, Order
from milepost.orders.states import TERMINAL_MILESTONE, MilestoneStatus, OrderStatus
from milepost.web import changes, earnings, operator, orders
from milepost.web.routing import (
    FormDep,
    MaybeUser,
    RuntimeDep,
    UserDep,
    WebRoute,
    flash,
    redirect,
    safe_next,
    sign_in,
    sign_out,
)
from milepost.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

TIMEZONES = [
    "UTC", "Europe/London", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
    "Europe/Warsaw", "Europe/Kyiv", "Europe/Istanbul", "Africa/Lagos", "Africa/Nairobi",
    "Africa/Johannesburg", "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata", "Asia/Dhaka",
    "Asia/Bangkok", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney",
    "Pacific/Auckland", "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/New_York",
    "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Mexico_City",
    "America/Toronto",
]
LOCALES = [
    ("en_US", "English (US)"), ("en_GB", "English (UK)"), ("de_DE", "Deutsch"),
    ("fr_FR", "Français"), ("es_ES", "Español"), ("pt_BR", "Português (Brasil)"),
    ("it_IT", "Italiano"), ("nl_NL", "Nederlands"), ("pl_PL", "Polski"), ("uk_UA", "Українська"),
    ("ja_JP", "日本語"), ("hi_IN", "हिन्दी"),
]


def _errors(exc: InvalidInput) -> dict[str, str]:
    result: dict[str, str] = {}
    for e in exc.errors:
        result.setdefault(e.get("field") or "", e.get("message", ""))
    return result


# ---------------------------------------------------------------------------------------------
# Register, log in, log out
# ---------------------------------------------------------------------------------------------


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request, user: MaybeUser) -> Response:
    if user is not None:
        return redirect("/")
    return render(request, "register.html", {"form": {}, "errors": {}, "timezones": TIMEZONES,
                                             "locales": LOCALES})


@router.post("/register", response_class=HTMLResponse)
def register(request: Request, runtime: RuntimeDep, form: FormDep) -> Response:
    values = {k: str(form.get(k, "")) for k in ("name", "email", "timezone", "locale")}
    tz = values["timezone"] if values["timezone"] in TIMEZONES else "UTC"
    locale = values["locale"] if values["locale"] in dict(LOCALES) else "en_US"
    try:
        with runtime.unit_of_work() as ctx:
            user = accounts.create_user(
                ctx, email=values["email"], password=str(form.get("password", "")),
                name=values["name"], locale=locale, timezone=tz,
            )
    except InvalidInput as exc:
        return render(request, "register.html", {"form": values, "errors": _errors(exc),
                                                 "timezones": TIMEZONES, "locales": LOCALES},
                      status_code=422)
    except Conflict as exc:
        return render(request, "register.html",
                      {"form": values, "errors": {"email": exc.message + " — log in instead"},
                       "timezones": TIMEZONES, "locales": LOCALES}, status_code=409)
    sign_in(request, user)
    flash(request, f"Welcome to Milepost, {user.name}.")
    return redirect("/")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, user: MaybeUser, next: str = "/") -> Response:
    if user is not None:
        return redirect(safe_next(next))
    return render(request, "login.html", {"form": {}, "error": None, "next": safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, runtime: RuntimeDep, form: FormDep) -> Response:
    email = str(form.get("email", ""))
    target = safe_next(str(form.get("next", "/")))
    throttle = throttle_for(request.app.state)
    ip = request.client.host if request.client else "unknown"
    try:
        throttle.check(email, ip)
    except TooManyAttempts as exc:
        return render(request, "login.html", {"form": {"email": email}, "next": target, "error": exc.message},
                      status_code=429)
    try:
        with runtime.reading() as ctx:
            user = accounts.authenticate(ctx.session, email=email, password=str(form.get("password", "")))
    except Unauthenticated:
        throttle.failed(email, ip)
        return render(
            request, "login.html",
            {"form": {"email": email}, "next": target,
             "error": "Wrong e-mail address or password. Check both and try again."},
            status_code=401,
        )
    throttle.succeeded(email, ip)
    sign_in(request, user)
    flash(request, f"Signed in as {user.name}.")
    return redirect(target)


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, user: MaybeUser) -> Response:
    if user is None:
        return redirect("/login")
    return render(request, "logout.html")


@router.post("/logout")
def logout(request: Request) -> Response:
    sign_out(request)
    flash(request, "You are signed out.")
    return redirect("/login")


# ---------------------------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------------------------


@dataclass
class ActionItem:
    kind: str  # review | deliver | late | fund | proposal | dispute | change | extension
    order: Order
    text: str
    milestone: Milestone | None = None
    when: datetime | None = None
    when_label: str = ""
    urgent: bool = False


@dataclass
class OrderRow:
    order: Order
    role: str
    counterparty: str
    milestones: list[Milestone]
    done: int = 0
    paid: int = 0
    current: Milestone | None = None
    flags: list[str] = field(default_factory=list)


def _current(milestones: list[Milestone]) -> Milestone | None:
    for m in milestones:
        if m.milestone_status not in TERMINAL_MILESTONE:
            return m
    return None


def needs_action(
    user: User, order: Order, milestones: list[Milestone], disputes: list[tuple[object, object]],
    now: datetime,
) -> list[ActionItem]:
    """What this user should do next on this order, most urgent first."""
    items: list[ActionItem] = []
    is_buyer = order.buyer_id == user.id
    if order.order_status == OrderStatus.PROPOSED and order.proposed_by_id != user.id:
        items.append(ActionItem("proposal", order, f"Answer plan version {order.plan_version}: "
                                "accept it or counter it"))
    for m in milestones:
        status = m.milestone_status
        if status == MilestoneStatus.DELIVERED and is_buyer:
            items.append(ActionItem("review", order, f"Review delivery of #{m.seq} {m.title}", m,
                                    m.review_due_at, "auto-approves", urgent=True))
        elif status == MilestoneStatus.IN_PROGRESS and not is_buyer and m.due_at is not None:
            late = as_utc(m.due_at) + timedelta(hours=order.late_grace_hours) < now
            overdue = as_utc(m.due_at) < now
            if late or overdue or as_utc(m.due_at) - now < timedelta(days=3):
                items.append(ActionItem("late" if late else "deliver", order,
                                        f"{'Late' if late else 'Deliver'}: #{m.seq} {m.title}", m,
                                        m.due_at, "due", urgent=overdue))
        elif (status == MilestoneStatus.IN_PROGRESS and is_buyer and m.due_at is not None
              and as_utc(m.due_at) + timedelta(hours=order.late_grace_hours) < now):
            items.append(ActionItem("late", order, f"#{m.seq} {m.title} is late: you may cancel "
                                    "it without a kill fee", m, m.due_at, "was due"))
    current = _current(milestones)
    if (is_buyer and order.order_status in (OrderStatus.AGREED, OrderStatus.ACTIVE) and current
            and current.milestone_status == MilestoneStatus.PENDING and not current.is_funded):
        what = "the order" if order.funding == "upfront" else f"milestone #{current.seq}"
        items.append(ActionItem("fund", order, f"Fund {what} so work can start", current))
    for _dispute, last in disputes:
        if getattr(last, "proposed_by_id", None) != user.id:
            items.append(ActionItem("dispute", order, "Answer the dispute proposal", None,
                                    getattr(last, "created_at", None), "proposed", urgent=True))
    return items


def answers_waiting(session: object, user: User, order: Order, milestones: list[Milestone]) -> list[ActionItem]:
    """Change orders and extension requests the other party is waiting for this user to answer."""
    items: list[ActionItem] = []
    pending = changes.pending_for(session, user, [order.id]).get(order.id)
    if not pending:
        return items
    by_id = {m.id: m for m in milestones}
    for c in pending["changes"]:
        items.append(ActionItem("change", order, "Answer a change of the plan: accept or decline it", None,
                                c.created_at, "proposed"))
    for x in pending["extensions"]:
        m = by_id.get(x.milestone_id)
        items.append(ActionItem("extension", order, f"{x.days} more day{'s' if x.days != 1 else ''} asked "
                                f"for #{m.seq if m else '?'}", m, x.respond_by_at, "granted by silence",
                                urgent=True))
    return items


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, runtime: RuntimeDep, user: MaybeUser) -> Response:
    if user is None:
        return redirect("/login")
    now = runtime.clock.now()
    actions: list[ActionItem] = []
    rows: dict[str, list[OrderRow]] = {"buyer": [], "seller": []}
    with runtime.reading() as ctx:
        found = list(orders_repo.orders_for_user(ctx.session, user.id, limit=200))
        by_order = orders_repo.milestones_of_orders(ctx.session, [o.id for o in found])
        names: dict[str, str] = {}
        for order in found:
            milestones = by_order.get(order.id, [])
            disputes = []
            if any(m.milestone_status == MilestoneStatus.DISPUTED for m in milestones):
                for d in disputes_repo.disputes_of_order(ctx.session, order.id):
                    if d.status != "resolved":
                        disputes.append((d, disputes_repo.proposals_of(ctx.session, d.id)[-1]))
            actions += needs_action(user, order, milestones, disputes, now)
            if order.order_status in (OrderStatus.AGREED, OrderStatus.ACTIVE):
                actions += answers_waiting(ctx.session, user, order, milestones)
            role = "buyer" if order.buyer_id == user.id else "seller"
            other = order.seller_id if role == "buyer" else order.buyer_id
            if other not in names:
                person = ctx.session.get(User, other)
                names[other] = person.name if person else "?"
            done = sum(1 for m in milestones if m.milestone_status in TERMINAL_MILESTONE)
            rows[role].append(OrderRow(
                order=order, role=role, counterparty=names[other], milestones=milestones, done=done,
                paid=sum(m.released_amount + m.held_for_seller_amount for m in milestones),
                current=_current(milestones),
            ))
    order_rank = {"review": 0, "dispute": 1, "extension": 2, "late": 3, "change": 4, "proposal": 5,
                  "deliver": 6, "fund": 7}
    actions.sort(key=lambda a: (order_rank.get(a.kind, 9), a.when or now))
    return render(request, "dashboard.html", {"actions": actions, "rows": rows})


# ---------------------------------------------------------------------------------------------
# Dev clock (demos and tests only)
# ---------------------------------------------------------------------------------------------

CLOCK_STEPS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "3d": timedelta(days=3),
               "8d": timedelta(days=8), "15d": timedelta(days=15)}


@router.post("/dev/clock")
def advance_clock(request: Request, runtime: RuntimeDep, user: UserDep, form: FormDep) -> Response:
    if not runtime.settings.dev_clock or not hasattr(runtime.clock, "advance"):
        raise NotFound("the dev clock is off")
    step = CLOCK_STEPS.get(str(form.get("step", "")))
    if step is None:
        raise InvalidInput("choose how far to move the clock")
    from milepost.timers.worker import run_due

    runtime.clock.advance(step)
    result = run_due(runtime)
    flash(request, f"Moved the clock forward by {form.get('step')}; {result.fired} timer(s) fired.")
    return redirect(safe_next(str(form.get("back", "/"))))


router.include_router(orders.router)
router.include_router(earnings.router)
router.include_router(operator.router)
router.include_router(changes.router)
