"""`milepost demo`: realistic data — the forum thread's 12-page website and 8 illustrations, and
orders in every state — made by driving the real services through a simulated six weeks.

The demo runs on its own clock that starts 45 days ago and ends now, so every date (due dates,
auto-approvals, clearance) is what the rules produce, and `milepost audit` holds afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from milepost.accounts import service as accounts
from milepost.accounts.models import User
from milepost.changes import extensions
from milepost.changes import service as changes
from milepost.clock import FixedClock, utcnow
from milepost.disputes import repository as disputes_repo
from milepost.disputes import service as disputes
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.orders.models import Order
from milepost.payouts import service as payouts
from milepost.reviews import service as reviews
from milepost.runtime import Runtime
from milepost.timers.worker import run_due

DEMO_PASSWORD = "milepost-demo"
DEMO_USERS = [
    # email, name, operator
    ("maya@example.com", "Maya Lindqvist (web & illustration studio)", False),
    ("sam@example.com", "Sam Okafor (video editor)", False),
    ("ben@example.com", "Ben Carter (Carter Bikes)", False),
    ("chloe@example.com", "Chloe Nguyen (Nguyen Press)", False),
    ("ops@example.com", "Olivia Ops (operator)", True),
]


@dataclass
class Demo:
    rt: Runtime
    clock: FixedClock
    users: dict[str, User] = field(default_factory=dict)

    def day(self, n: float) -> None:
        """Move the demo clock to day n of the story and fire what fell due on the way."""
        target = self.start + timedelta(days=n)
        if target > self.clock.now():
            self.clock.set(target)
            run_due(self.rt)

    def __post_init__(self) -> None:
        self.start = self.clock.now()

    def u(self, name: str) -> User:
        return self.users[name]

    def do(self, fn: Any, **kwargs: Any) -> Any:
        with self.rt.unit_of_work() as ctx:
            return fn(ctx, **kwargs)

    def milestone_ids(self, order_id: str) -> list[str]:
        with self.rt.reading() as ctx:
            return [m.id for m in orders_repo.milestones_of(ctx.session, order_id)]


def _pages(n: int, amount: int) -> list[dict[str, Any]]:
    names = ["Home", "About", "Services", "Bike catalogue", "Product page", "Cart", "Checkout",
             "Blog index", "Blog article", "Contact", "FAQ", "Store locator"]
    return [
        {
            "title": f"Page {i}: {names[i - 1]}",
            "description": f"Design and build the {names[i - 1].lower()} page in the agreed style.",
            "acceptance_criteria": [
                "Matches the approved style guide and wireframe",
                "Responsive from 375 px to 1440 px wide",
                "Lighthouse accessibility score of 95 or more",
            ],
            "amount": amount,
            "due_days": 4,
        }
        for i in range(1, n + 1)
    ]


def _illustrations(n: int, amount: int) -> list[dict[str, Any]]:
    return [
        {
            "title": f"Illustration {i} of {n}",
            "description": "Black-and-white ink drawing, chapter opener.",
            "acceptance_criteria": ["300 dpi TIFF and layered PSD", "Follows the chapter brief",
                                    "Rough sketch approved before inking"],
            "amount": amount,
            "due_days": 5,
        }
        for i in range(1, n + 1)
    ]


def _simple(titles: list[str], amounts: list[int], due_days: int = 5) -> list[dict[str, Any]]:
    return [
        {"title": t, "description": "", "acceptance_criteria": [f"{t} delivered as agreed"],
         "amount": a, "due_days": due_days}
        for t, a in zip(titles, amounts, strict=True)
    ]


def load_demo(rt: Runtime, *, if_empty: bool = False, console: Console | None = None) -> dict[str, int] | None:
    console = console or Console()
    with rt.reading() as ctx:
        users = ctx.session.scalar(select(func.count()).select_from(User)) or 0
    if users and if_empty:
        return None
    now = utcnow().replace(microsecond=0)
    clock = FixedClock(now - timedelta(days=45))
    demo_rt = replace(rt, clock=clock)
    d = Demo(demo_rt, clock)
    for email, name, operator in DEMO_USERS:
        with demo_rt.unit_of_work() as ctx:
            existing = accounts.find_by_email(ctx.session, email)
            d.users[email.split("@")[0]] = existing or accounts.create_user(
                ctx, email=email, password=DEMO_PASSWORD, name=name, is_operator=operator)
    maya, sam, ben, chloe, ops = (d.u(n) for n in ("maya", "sam", "ben", "chloe", "ops"))

    # 1. The 12-page website (forum thread): paid per approved page, not at the very end.
    website = d.do(orders.propose, actor=maya, role="seller", counterparty_email=ben.email,
                   title="Carter Bikes — 12-page website", currency="USD",
                   brief="Twelve pages for the new Carter Bikes site, one page per milestone.",
                   terms={"review_days": 5, "clearance_days": 7}, milestones=_pages(12, 25_000)).id
    d.do(orders.counter, actor=ben, order_id=website, terms={"review_days": 7},
         note="We need a week to review each page with the team.")
    d.do(orders.accept, actor=maya, order_id=website, plan_version=2)
    d.do(orders.fund, actor=ben, order_id=website)
    pages = d.milestone_ids(website)

    # 2. The 8 illustrations, funded one milestone at a time.
    book = d.do(orders.propose, actor=chloe, role="buyer", counterparty_email=maya.email,
                title="Nguyen Press — 8 chapter illustrations", currency="USD",
                brief="Eight black-and-white chapter openers for 'The Long Ride'.",
                terms={"funding": "per_milestone", "revisions": 3},
                milestones=_illustrations(8, 6_000)).id
    d.do(orders.accept, actor=maya, order_id=book, plan_version=1)
    d.do(orders.fund, actor=chloe, order_id=book)
    ills = d.milestone_ids(book)

    # 3. An app built in sprints, cancelled by the buyer with a kill fee.
    app_order = d.do(orders.propose, actor=maya, role="seller", counterparty_email=ben.email,
                     title="Carter Bikes — booking app sprints", currency="USD",
                     terms={"kill_fee_bps": 2_500},
                     milestones=_simple(["Sprint 1: booking flow", "Sprint 2: payments",
                                         "Sprint 3: admin"], [120_000, 120_000, 90_000], 10)).id
    d.do(orders.accept, actor=ben, order_id=app_order, plan_version=1)
    d.do(orders.fund, actor=ben, order_id=app_order)
    sprints = d.milestone_ids(app_order)

    # 4. Book covers: a dispute still being negotiated.  5. Brand guide: resolved by the operator.
    covers = d.do(orders.propose, actor=chloe, role="buyer", counterparty_email=maya.email,
                  title="Nguyen Press — cover series", currency="USD",
                  milestones=_simple(["Cover 1", "Cover 2"], [40_000, 40_000])).id
    d.do(orders.accept, actor=maya, order_id=covers, plan_version=1)
    d.do(orders.fund, actor=chloe, order_id=covers)
    brand = d.do(orders.propose, actor=sam, role="seller", counterparty_email=chloe.email,
                 title="Nguyen Press — launch trailer", currency="EUR",
                 milestones=_simple(["Storyboard", "Rough cut", "Final cut"], [30_000, 50_000, 70_000], 6)).id
    d.do(orders.accept, actor=chloe, order_id=brand, plan_version=1)
    d.do(orders.fund, actor=chloe, order_id=brand)

    d.day(2)
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[0], message="Home page is live on staging.")
    d.do(orders.deliver, actor=sam, order_id=brand, milestone_id=d.milestone_ids(brand)[0],
         message="Storyboard attached as a PDF.")
    d.day(3)
    d.do(orders.approve, actor=ben, order_id=website, milestone_id=pages[0])
    d.do(orders.approve, actor=chloe, order_id=brand, milestone_id=d.milestone_ids(brand)[0])
    d.do(orders.deliver, actor=maya, order_id=book, milestone_id=ills[0], message="Chapter 1 opener, inked.")
    d.day(4)
    d.do(orders.approve, actor=chloe, order_id=book, milestone_id=ills[0])
    d.do(orders.fund, actor=chloe, order_id=book)
    d.day(6)
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[1], message="About page ready.")
    d.day(7)
    d.do(orders.request_revision, actor=ben, order_id=website, milestone_id=pages[1],
         reason="Please use the team photo from the shared folder, not the stock image.")
    d.day(8)
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[1], message="Team photo swapped in.")
    d.do(orders.deliver, actor=maya, order_id=book, milestone_id=ills[1], message="Chapter 2 opener.")
    d.day(9)
    d.do(orders.approve, actor=ben, order_id=website, milestone_id=pages[1])
    d.do(orders.approve, actor=chloe, order_id=book, milestone_id=ills[1])
    d.do(orders.fund, actor=chloe, order_id=book)
    d.day(10)
    d.do(orders.deliver, actor=sam, order_id=brand, milestone_id=d.milestone_ids(brand)[1],
         message="Rough cut, 2:10.")
    d.day(11)
    d.do(disputes.open_dispute, actor=chloe, order_id=brand, milestone_id=d.milestone_ids(brand)[1],
         reason="The rough cut uses footage we did not license.", seller_amount=15_000)
    d.day(12)
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[2], message="Services page.")
    dispute_brand = _dispute_of(d, brand)
    d.do(disputes.counter, actor=sam, dispute_id=dispute_brand, seller_amount=45_000,
         note="The footage came from the client's own drive.")
    # Page 3 gets no answer: it is auto-approved when the review window closes (day 19).
    d.day(14)
    d.do(disputes.counter, actor=chloe, dispute_id=dispute_brand, seller_amount=20_000,
         note="Only the storyboard-based shots are usable.")
    d.do(orders.deliver, actor=maya, order_id=app_order, milestone_id=sprints[0], message="Booking flow demo.")
    d.day(15)
    d.do(orders.approve, actor=ben, order_id=app_order, milestone_id=sprints[0])
    d.day(20)
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[3], message="Catalogue page.")
    d.day(21)
    d.do(orders.approve, actor=ben, order_id=website, milestone_id=pages[3])
    d.do(orders.cancel, actor=ben, order_id=app_order,
         reason="Our payment provider changed; we will rescope the app next year.")
    d.do(reviews.leave_review, actor=ben, order_id=app_order, rating=5,
         text="Sprint 1 was excellent; we stopped for our own reasons. Maya was paid fairly for it.")
    d.do(reviews.leave_review, actor=maya, order_id=app_order, rating=5,
         text="Clear feedback and a fair kill fee when plans changed.")
    d.day(22)  # the brand dispute escalated on day 18; the operator decides
    d.do(disputes.resolve, actor=ops, dispute_id=dispute_brand, seller_amount=30_000,
         note="Footage source unclear; splitting the milestone.")
    d.day(25)
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[4], message="Product page.")
    d.day(29)
    d.do(orders.approve, actor=ben, order_id=website, milestone_id=pages[4])
    d.day(30)
    with demo_rt.unit_of_work() as ctx:
        from milepost.ledger import postings
        from milepost.ledger import repository as ledger_repo

        available = ledger_repo.balance(ctx.session, postings.available_account(maya.id), "USD")
    if available >= 1_000:
        d.do(payouts.create_payout, actor=maya, amount=available - available % 100, currency="USD")
    d.day(33)  # scope grows: a careers page, proposed as a change order and funded at acceptance
    change = d.do(changes.propose_change, actor=ben, order_id=website,
                  reason="We are hiring: please add a careers page at the end.",
                  add=[{"title": "Page 13: Careers", "description": "Open roles and an apply form.",
                        "acceptance_criteria": ["Lists roles from the HR sheet", "Apply form e-mails HR"],
                        "amount": 25_000, "due_days": 4}])
    d.day(34)
    d.do(changes.accept_change, actor=maya, change_id=change.id)
    d.day(38)  # page 6 was due on day 33: it ran late, and both parties were told
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[5],
         message="Product page, sorry for the delay — supplier photos arrived late.")
    d.do(orders.deliver, actor=maya, order_id=book, milestone_id=ills[2], message="Chapter 3 opener.")
    d.day(39)
    d.do(orders.request_revision, actor=chloe, order_id=book, milestone_id=ills[2],
         reason="The bicycle should face left, towards the chapter title.")
    d.do(orders.deliver, actor=maya, order_id=covers, milestone_id=d.milestone_ids(covers)[0],
         message="Cover 1 final artwork.")
    ext = d.do(extensions.request_extension, actor=maya, order_id=book, milestone_id=ills[2], days=3,
               reason="Redrawing the bicycle facing left means re-inking the whole spread.")
    d.day(40)
    d.do(extensions.accept_extension, actor=chloe, extension_id=ext.id)
    d.do(orders.approve, actor=ben, order_id=website, milestone_id=pages[5])
    d.day(41)
    d.do(disputes.open_dispute, actor=chloe, order_id=covers, milestone_id=d.milestone_ids(covers)[0],
         reason="The title typography does not match the brief.", seller_amount=20_000)
    d.day(42)
    d.do(disputes.counter, actor=maya, dispute_id=_dispute_of(d, covers), seller_amount=36_000,
         note="Typography follows the brief's second revision; happy to adjust the kerning.")
    d.day(43)
    d.do(orders.deliver, actor=maya, order_id=website, milestone_id=pages[6],
         message="Cart page — please review the quantity stepper.")
    # 6. A fresh proposal waiting for Maya's answer.
    d.do(orders.propose, actor=chloe, role="buyer", counterparty_email=maya.email,
         title="Nguyen Press — logo refresh", currency="USD",
         milestones=_simple(["Three concepts", "Refinement", "Final files"], [30_000, 25_000, 20_000]))
    d.day(45)
    with demo_rt.reading() as ctx:
        count = ctx.session.scalar(select(func.count()).select_from(Order)) or 0
    summary = {"users": len(DEMO_USERS), "orders": int(count)}
    _print_summary(demo_rt, console)
    return summary


def _dispute_of(d: Demo, order_id: str) -> str:
    with d.rt.reading() as ctx:
        return disputes_repo.disputes_of_order(ctx.session, order_id)[-1].id


def _print_summary(rt: Runtime, console: Console) -> None:
    from milepost.money import format_money

    table = Table(title="Demo orders")
    for col in ("order", "status", "milestones", "total"):
        table.add_column(col)
    with rt.reading() as ctx:
        for order in ctx.session.scalars(select(Order).order_by(Order.created_at)):
            ms = orders_repo.milestones_of(ctx.session, order.id)
            counts: dict[str, int] = {}
            for m in ms:
                counts[m.status] = counts.get(m.status, 0) + 1
            table.add_row(order.title, order.status, ", ".join(f"{n} {s}" for s, n in counts.items()),
                          format_money(order.total_amount, order.currency))
    console.print(table)
    console.print(f"Log in with any of: {', '.join(e for e, _, _ in DEMO_USERS)} — password {DEMO_PASSWORD!r}")
