"""The whole milestone-contract story in Chromium, as buyers, sellers and an operator live it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.browser.conftest import LiveServer, shot
from tests.factories import PASSWORD, make_order, make_user

from milepost.accounts import service as accounts

pytestmark = pytest.mark.browser

_n = iter(range(1, 10_000))


def unique(prefix: str) -> str:
    return f"{prefix}{next(_n)}-{id(object()) % 100000}@example.com"


def register(page: Any, name: str, email: str) -> None:
    page.goto("/register")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Welcome to Milepost, {name}")


def log_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("status").first).to_contain_text("Signed in")


def flash(page: Any) -> Any:
    return page.locator(".flash-success").first


def test_order_from_proposal_to_clearing_money(new_page: Any, live_server: LiveServer) -> None:
    seller, buyer = new_page(), new_page()
    seller_email, buyer_email = unique("sam"), unique("bea")
    register(seller, "Sam Seller", seller_email)
    register(buyer, "Bea Buyer", buyer_email)

    # The seller proposes a three-milestone plan.
    seller.goto("/orders/new")
    seller.get_by_label("The other party's e-mail").fill(buyer_email)
    seller.locator("#title").fill("Portfolio website")
    plan = [("Design", "200.00", "Home page design at phone and desktop width"),
            ("Pages", "500.00", "Five pages live on staging"),
            ("Launch", "300.00", "Site served on the buyer's domain")]
    for i, (title, amount, criterion) in enumerate(plan):
        seller.locator(f"#ms-{i}-title").fill(title)
        seller.locator(f"#ms-{i}-amount").fill(amount)
        seller.locator(f"#ms-{i}-due").fill("10")
        seller.locator(f"#ms-{i}-criteria").fill(criterion)
    expect(seller.locator("#plan-total")).to_have_text("$1,000.00")
    shot(seller, "plan-builder")
    seller.get_by_role("button", name="Send proposal").click()
    expect(flash(seller)).to_contain_text("Proposal sent")
    order_url = seller.url
    assert re.search(r"/orders/ord_\w+$", order_url)

    # The buyer counters with a smaller first milestone.
    buyer.goto("/")
    expect(buyer.get_by_text("Answer plan version 1")).to_be_visible()
    shot(buyer, "dashboard-buyer")
    buyer.goto(order_url)
    buyer.get_by_role("link", name="Counter-propose").click()
    buyer.locator("#ms-0-amount").fill("150.00")
    expect(buyer.locator("#plan-total")).to_have_text("$950.00")
    buyer.get_by_label("What changed and why").fill("A smaller first step, please.")
    buyer.get_by_role("button", name="Send counter-proposal").click()
    expect(flash(buyer)).to_contain_text("plan version 2")

    # The seller accepts; the buyer funds.
    seller.goto(order_url)
    seller.get_by_role("button", name="Accept plan v2").click()
    expect(flash(seller)).to_contain_text("Plan accepted")
    buyer.goto(order_url)
    buyer.get_by_role("button", name=re.compile(r"Pay \$950\.00 into escrow")).click()
    expect(flash(buyer)).to_contain_text("Paid into escrow")

    # The seller delivers with a file; the buyer asks for a revision; the seller re-delivers.
    seller.goto(order_url)
    seller.get_by_label("Message to the buyer").fill("Here is the home page design.")
    seller.get_by_label("Files").set_input_files(
        {"name": "home-design.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 design"})
    seller.get_by_role("button", name="Deliver", exact=True).click()
    expect(flash(seller)).to_contain_text("Delivered (attempt 1)")

    buyer.goto(order_url)
    expect(buyer.get_by_role("link", name="home-design.pdf")).to_be_visible()
    expect(buyer.get_by_text(re.compile("Auto-approves"))).to_be_visible()
    shot(buyer, "order-delivered")
    buyer.locator("summary", has_text="Request a revision").click()
    buyer.get_by_label("What should change?").fill("Make the logo bigger.")
    buyer.get_by_role("button", name="Send revision request").click()
    expect(flash(buyer)).to_contain_text("Revision requested (1 of 2 used)")

    seller.goto(order_url)
    expect(seller.locator(".revision-note")).to_contain_text("Make the logo bigger.")
    seller.get_by_label("Message to the buyer").fill("Bigger logo, as asked.")
    seller.get_by_role("button", name="Deliver", exact=True).click()
    expect(flash(seller)).to_contain_text("Delivered (attempt 2)")

    # The buyer approves: the money is released and clears for the seller.
    buyer.goto(order_url)
    buyer.get_by_role("button", name=re.compile(r"Approve and release \$150\.00")).click()
    expect(flash(buyer)).to_contain_text("approved")
    shot(buyer, "order-page")

    seller.goto("/earnings")
    # 150.00 released, less the 10 % seller fee.
    expect(seller.get_by_test_id("clearing-USD")).to_have_text("$135.00")
    expect(seller.locator("table")).to_contain_text("Clearing (exact date)")
    shot(seller, "earnings")

    # The dev clock moves past the clearance: the money becomes available to pay out.
    seller.get_by_label("Advance by").select_option("8d")
    seller.get_by_role("button", name="Advance time").click()
    expect(seller.get_by_test_id("available-USD")).to_have_text("$135.00")
    seller.get_by_label("Amount").fill("100.00")
    seller.get_by_role("button", name="Pay out").click()
    expect(flash(seller)).to_contain_text("Payout of $100.00")
    expect(seller.get_by_test_id("available-USD")).to_have_text("$35.00")
    seller.goto("/")
    shot(seller, "dashboard-seller")


def test_buyer_cancel_pays_the_kill_fee(new_page: Any, live_server: LiveServer) -> None:
    rt = live_server.runtime
    buyer = make_user(rt, email=unique("kb"), name="Kim Buyer")
    seller = make_user(rt, email=unique("ks"), name="Kai Seller")
    order_id = make_order(rt, buyer=buyer, seller=seller, amounts=(40_000, 60_000),
                          terms={"kill_fee_bps": 2500})
    page = new_page()
    log_in(page, buyer.email)
    page.goto(f"/orders/{order_id}")
    page.get_by_role("link", name="Cancel the rest of the order…").click()
    table = page.locator("table")
    # Milestone 1 is running: a quarter of 400.00 goes to the seller, the rest comes back.
    expect(table.locator("tbody tr").nth(0)).to_contain_text("$100.00")
    expect(table.locator("tbody tr").nth(0)).to_contain_text("$300.00")
    expect(table.locator("tbody tr").nth(1)).to_contain_text("$600.00")
    expect(table.locator("tfoot")).to_contain_text("$900.00")
    shot(page, "cancel")
    page.get_by_role("button", name="Confirm cancellation").click()
    expect(page.locator(".field-error")).to_contain_text("must not be empty")
    page.get_by_label("Reason (shown to the other party)").fill("Plans changed.")
    page.get_by_role("button", name="Confirm cancellation").click()
    expect(flash(page)).to_contain_text("cancelled")
    expect(page.locator(".stats")).to_contain_text("$100.00")  # released to the seller
    expect(page.locator(".stats")).to_contain_text("$900.00")  # refunded


def test_dispute_negotiated_then_resolved_by_operator(new_page: Any, live_server: LiveServer) -> None:
    rt = live_server.runtime
    buyer = make_user(rt, email=unique("db"), name="Dee Buyer")
    seller = make_user(rt, email=unique("ds"), name="Dan Seller")
    with rt.unit_of_work() as ctx:
        operator = accounts.create_user(ctx, email=unique("op"), password=PASSWORD, name="Olga Operator",
                                        is_operator=True)
    order_id = make_order(rt, buyer=buyer, seller=seller, amounts=(50_000, 50_000))

    s = new_page()
    log_in(s, seller.email)
    s.goto(f"/orders/{order_id}")
    s.get_by_role("link", name="Open a dispute on this milestone").click()
    s.get_by_label("What went wrong?").fill("The buyer changed the scope twice.")
    s.get_by_label(re.compile("Seller's share")).fill("400.00")
    shot(s, "dispute")
    s.get_by_role("button", name="Open the dispute").click()
    expect(flash(s)).to_contain_text("Dispute opened")

    b = new_page()
    log_in(b, buyer.email)
    expect(b.get_by_text("Answer the dispute proposal")).to_be_visible()
    b.goto(f"/orders/{order_id}")
    b.locator("summary", has_text="Counter").click()
    b.get_by_label(re.compile("Seller's share")).fill("100.00")
    b.get_by_role("button", name="Send counter-proposal").click()
    expect(flash(b)).to_contain_text("Counter-proposal sent")

    op = new_page()
    log_in(op, operator.email)
    op.goto("/operator")
    card = op.locator("article.dispute-card").filter(has_text="Dan Seller")
    expect(card).to_contain_text("$400.00")
    expect(card).to_contain_text("$100.00")
    expect(op.get_by_text("all invariants hold")).to_be_visible()
    shot(op, "operator")
    card.get_by_label(re.compile("Seller's share")).fill("250.00")
    card.get_by_role("button", name="Resolve").click()
    expect(flash(op)).to_contain_text("resolved")

    b.goto(f"/orders/{order_id}")
    expect(b.locator("#m-1")).to_contain_text("Resolved")
    expect(b.locator("#m-1")).to_contain_text("$250.00 to the seller")
    expect(b.locator("#m-2")).to_contain_text("In progress")


def test_pages_fit_a_phone_screen(new_page: Any, live_server: LiveServer) -> None:
    rt = live_server.runtime
    buyer = make_user(rt, email=unique("pb"), name="Pat Buyer")
    seller = make_user(rt, email=unique("ps"), name="Pia Seller with a rather long name")
    make_user(rt, email=unique("po"), name="Op", operator=True)
    order_id = make_order(rt, buyer=buyer, seller=seller)
    phone = new_page(375, 740)
    for path in ("/login", "/register"):
        phone.goto(path)
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    log_in(phone, seller.email)
    for name, path in [("dashboard", "/"), ("plan-builder", "/orders/new"), ("order", f"/orders/{order_id}"),
                       ("earnings", "/earnings"), ("cancel", f"/orders/{order_id}/cancel")]:
        phone.goto(path)
        width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} scrolls sideways at 375 px: {width}"
        shot(phone, f"phone-{name}")
    # Keyboard: the first Tab reaches the skip link, which is visible when focused.
    phone.goto("/")
    phone.keyboard.press("Tab")
    expect(phone.locator(".skip")).to_be_focused()
