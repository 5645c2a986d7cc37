"""Planning and change in Chromium: plan lint and the relationship panel in the plan builder; a change
order, an extension and reviews on the order page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.browser.conftest import LiveServer, shot
from tests.e2e.browser.test_web_flows import flash, log_in, unique
from tests.factories import assert_invariants, get_order, make_order, make_user

from milepost.orders import service as orders

pytestmark = pytest.mark.browser


def fits_phone(page: Any, path: str) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{path} scrolls sideways at 375 px: {width}"


def test_plan_builder_shows_lint_warnings_and_the_relationship(new_page: Any, live_server: LiveServer) -> None:
    rt = live_server.runtime
    buyer = make_user(rt, email=unique("lb"), name="Lena Buyer")
    seller = make_user(rt, email=unique("ls"), name="Leo Seller")
    # One earlier order together, cancelled and reviewed: it shows in the panel.
    earlier = make_order(rt, buyer=buyer, seller=seller, amounts=(10_000, 10_000))
    with rt.unit_of_work() as ctx:
        orders.cancel(ctx, actor=buyer, order_id=earlier, reason="Budget cut.")
    from milepost.reviews import service as reviews

    with rt.unit_of_work() as ctx:
        reviews.leave_review(ctx, actor=buyer, order_id=earlier, rating=4, text="Friendly and quick.")

    page = new_page()
    log_in(page, seller.email)
    page.goto("/orders/new")
    page.get_by_role("button", name="Remove milestone 3").click()
    page.get_by_label("The other party's e-mail").fill(buyer.email)
    rows = [("Logo", "900.00", "Three logo directions"), ("Cards", "100.00", "")]
    for i, (title, amount, criterion) in enumerate(rows):
        page.locator(f"#ms-{i}-title").fill(title)
        page.locator(f"#ms-{i}-amount").fill(amount)
        page.locator(f"#ms-{i}-criteria").fill(criterion)
    # The lint panel refreshes on every change (htmx): leaving the title field fires one.
    page.locator("#title").fill("Brand identity")
    page.locator("#brief").click()
    lint = page.locator("#lint")
    expect(lint.locator('[data-code="concentrated_amount"]')).to_contain_text("Most of the money in one milestone")
    expect(lint.locator('[data-code="missing_acceptance_criteria"]')).to_contain_text("Milestone 2")
    panel = page.get_by_test_id("relationship")
    expect(panel).to_contain_text("History with Lena Buyer")
    expect(panel).to_contain_text("1 cancelled")
    expect(panel).to_contain_text("Friendly and quick.")
    expect(panel).to_contain_text("Suggested plan shape")
    shot(page, "plan-builder-lint")
    lint.screenshot(path=str(_shots() / "plan-builder-lint-panel.png"))

    phone = new_page(375, 740)
    log_in(phone, seller.email)
    phone.goto(f"/orders/new?counterparty={buyer.email}")
    expect(phone.get_by_test_id("relationship")).to_contain_text("Lena Buyer")
    fits_phone(phone, "/orders/new")


def _shots() -> Any:
    from tests.e2e.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_change_order_extension_and_reviews(new_page: Any, live_server: LiveServer) -> None:
    rt = live_server.runtime
    buyer = make_user(rt, email=unique("cb"), name="Cora Buyer")
    seller = make_user(rt, email=unique("cs"), name="Cal Seller")
    order_id = make_order(rt, buyer=buyer, seller=seller, amounts=(30_000, 40_000))
    url = f"/orders/{order_id}"

    # The seller proposes a change that adds a milestone; the form shows the cost before sending.
    s = new_page()
    log_in(s, seller.email)
    s.goto(url)
    s.get_by_role("link", name="Propose a change…").click()
    s.get_by_label("Title").fill("Blog section")
    s.locator("#add-amount").fill("250.00")
    s.locator("#add-criteria").fill("Blog index and post template live")
    s.get_by_label("Reason for the change").fill("You asked for a blog in our call.")
    s.get_by_role("button", name="Review the change").click()
    expect(s.get_by_test_id("money-effect")).to_contain_text("$250.00 more into escrow")
    fits_phone(s, "change preview (desktop)")
    shot(s, "change-order-preview")
    s.get_by_role("button", name="Send the change proposal").click()
    expect(flash(s)).to_contain_text("Change proposed")

    # The buyer sees it waiting, and accepts: plan version 2, escrow topped up.
    b = new_page()
    log_in(b, buyer.email)
    expect(b.get_by_text("Answer a change of the plan")).to_be_visible()
    b.goto(url)
    box = b.locator(".change-box")
    expect(box).to_contain_text("Blog section")
    expect(box).to_contain_text("$250.00 more into escrow")
    shot(b, "change-order")
    box.screenshot(path=str(_shots() / "change-order-box.png"))
    b.get_by_role("button", name="Accept the change").click()
    expect(flash(b)).to_contain_text("plan is now version 2")
    expect(b.locator(".page-head p.muted")).to_contain_text("plan version 2")
    expect(b.locator("#m-3")).to_contain_text("Blog section")
    expect(b.locator(".events")).to_contain_text("accepted a change: new plan version (v2)")
    _, milestones = get_order(rt, order_id)
    assert len(milestones) == 3 and milestones[2].is_funded
    assert_invariants(rt)

    # The seller asks for more days on the running milestone; the buyer accepts.
    s.goto(url)
    s.locator("#m-1 summary", has_text="Ask for more days").click()
    s.get_by_label("Extra days").fill("4")
    s.get_by_label(re.compile("^Why\\?")).fill("Waiting for the copy from your team.")
    s.get_by_role("button", name="Send the request").click()
    expect(flash(s)).to_contain_text("4 more days")
    b.goto("/")
    expect(b.get_by_text("4 more days asked for #1")).to_be_visible()
    b.goto(url)
    expect(b.locator(".extension-box")).to_contain_text("48 hours")
    b.get_by_role("button", name="Give 4 more days").click()
    expect(flash(b)).to_contain_text("Extension accepted")
    expect(b.locator("#m-1")).to_contain_text("Extension of 4 days granted")

    # The buyer cancels; both leave a review with the radio group.
    b.goto(f"{url}/cancel")
    b.get_by_label("Reason (shown to the other party)").fill("The project is on hold.")
    b.get_by_role("button", name="Confirm cancellation").click()
    expect(flash(b)).to_contain_text("cancelled")
    assert_invariants(rt)
    shot(b, "order-cancelled-review-form")
    rating = b.get_by_role("group", name="Your rating of Cal Seller")
    rating.get_by_label("4 of 5 stars").check()
    b.get_by_label(re.compile("What was it like")).fill("Good work until we paused.")
    b.get_by_role("button", name="Leave the review").click()
    expect(flash(b)).to_contain_text("review is saved")

    s.goto(url)
    s.get_by_role("group", name="Your rating of Cora Buyer").get_by_label("5 of 5 stars").check()
    s.get_by_role("button", name="Leave the review").click()
    expect(flash(s)).to_contain_text("review is saved")
    reviews = s.locator("#reviews")
    expect(reviews).to_contain_text("Good work until we paused.")
    expect(reviews.locator(".review")).to_have_count(2)
    expect(s.get_by_test_id("relationship")).to_contain_text("4.5 / 5 average")
    shot(s, "order-reviews")

    # Phone width: the order page and the change form fit without sideways scrolling.
    phone = new_page(375, 740)
    log_in(phone, buyer.email)
    for name, path in [("order-changes", url)]:
        phone.goto(path)
        fits_phone(phone, path)
        shot(phone, f"phone-{name}")
    other = make_order(rt, buyer=buyer, seller=seller, amounts=(30_000, 40_000))
    phone.goto(f"/orders/{other}/changes/new")
    fits_phone(phone, "/changes/new")
    phone.get_by_role("button", name="Review the change").click()
    expect(phone.locator(".flash-error")).to_contain_text("nothing to change")
    fits_phone(phone, "/changes/new (errors)")
    shot(phone, "phone-change-form")
