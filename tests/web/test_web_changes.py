"""Change orders, extensions, reviews and the relationship panel in the web app, without a browser:
the forms, their errors next to the fields, CSRF, strangers, and the money they move."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from milepost.app import create_app
from milepost.changes import repository as changes_repo
from milepost.orders import service as orders
from milepost.runtime import Runtime
from tests.factories import PASSWORD, assert_invariants, get_order, make_order, make_user

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

Login = Callable[[str], TestClient]


@pytest.fixture
def backend() -> str:
    # The rules are the services' (tested on both databases); here the web layer is under test.
    return "sqlite"


@pytest.fixture
def login(runtime: Runtime) -> Iterator[Login]:
    """A signed-in TestClient per person (each its own cookie jar)."""
    app = create_app(runtime)
    clients: list[TestClient] = []

    def make(email: str) -> TestClient:
        c = TestClient(app, base_url="http://127.0.0.1")
        c.__enter__()
        clients.append(c)
        token = csrf_of(c, "/login")
        answer = c.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                        follow_redirects=False)
        assert answer.status_code == 303, answer.text
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def csrf_of(client: TestClient, path: str = "/") -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def pair(runtime: Runtime) -> tuple[str, str]:
    """A funded, running 3-milestone order (upfront funding) between buyer@ and seller@."""
    buyer = make_user(runtime, email="buyer@example.com", name="Bea Buyer")
    seller = make_user(runtime, email="seller@example.com", name="Sam Seller")
    make_user(runtime, email="eve@example.com", name="Eve Stranger")
    return make_order(runtime, buyer=buyer, seller=seller), buyer.id


def _add_milestone_form(token: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": token, "add.title": "Extra page", "add.amount": "150.00", "add.due_days": "5",
            "add.criteria": "The extra page is live", "reason": "The buyer asked for one more page.",
            **extra}


def test_change_adding_a_milestone_previews_the_cost_then_the_buyer_accepts(
    runtime: Runtime, login: Login, pair: tuple[str, str]
) -> None:
    order_id, _ = pair
    seller = login("seller@example.com")
    form_page = seller.get(f"/orders/{order_id}/changes/new")
    assert form_page.status_code == 200
    token = CSRF.search(form_page.text).group(1)  # type: ignore[union-attr]

    preview = seller.post(f"/orders/{order_id}/changes/new", data=_add_milestone_form(token))
    assert preview.status_code == 200
    # Upfront and funded: the new milestone is paid into escrow when the change is accepted.
    assert "the buyer pays <strong>$150.00</strong> more into escrow" in preview.text
    assert "Send the change proposal" in preview.text
    # A preview proposes nothing.
    with runtime.reading() as ctx:
        assert not changes_repo.changes_of(ctx.session, order_id)

    sent = seller.post(f"/orders/{order_id}/changes/new",
                       data=_add_milestone_form(token, _action="submit"), follow_redirects=False)
    assert sent.status_code == 303
    with runtime.reading() as ctx:
        (change,) = changes_repo.changes_of(ctx.session, order_id)
        change_id = change.id

    buyer = login("buyer@example.com")
    assert "Answer a change of the plan" in buyer.get("/").text
    page = buyer.get(f"/orders/{order_id}")
    assert "Accept the change" in page.text and "$150.00 more into escrow" in page.text
    accepted = buyer.post(f"/changes/{change_id}/accept", data={"csrf_token": csrf_of(buyer)},
                          follow_redirects=False)
    assert accepted.status_code == 303
    assert "plan is now version 2" in buyer.get(accepted.headers["location"]).text
    order, milestones = get_order(runtime, order_id)
    assert order.plan_version == 2 and len(milestones) == 4
    assert milestones[-1].title == "Extra page" and milestones[-1].is_funded
    assert_invariants(runtime)


def test_repricing_a_funded_milestone_refunds_the_difference(
    runtime: Runtime, login: Login, pair: tuple[str, str]
) -> None:
    order_id, _ = pair
    _, milestones = get_order(runtime, order_id)
    third = milestones[2]
    buyer = login("buyer@example.com")
    token = csrf_of(buyer, f"/orders/{order_id}/changes/new")
    data = {"csrf_token": token, f"ms.{third.id}.amount": "200.00", "reason": "Smaller last step."}
    preview = buyer.post(f"/orders/{order_id}/changes/new", data=data)
    assert "<strong>$100.00</strong> is refunded to the buyer" in preview.text
    buyer.post(f"/orders/{order_id}/changes/new", data={**data, "_action": "submit"})
    with runtime.reading() as ctx:
        (change,) = changes_repo.changes_of(ctx.session, order_id)
    seller = login("seller@example.com")
    seller.post(f"/changes/{change.id}/accept", data={"csrf_token": csrf_of(seller)})
    _, after = get_order(runtime, order_id)
    assert after[2].amount == 20_000 and after[2].refunded_amount == 0
    assert_invariants(runtime)


def test_change_form_shows_errors_next_to_their_fields(login: Login, pair: tuple[str, str]) -> None:
    order_id, _ = pair
    seller = login("seller@example.com")
    token = csrf_of(seller, f"/orders/{order_id}/changes/new")
    bad = seller.post(f"/orders/{order_id}/changes/new",
                      data=_add_milestone_form(token, **{"add.amount": "lots", "add.due_days": "soon"}))
    assert bad.status_code == 422
    assert 'id="add-amount-error"' in bad.text and 'id="add-due_days-error"' in bad.text
    assert 'value="Extra page"' in bad.text  # input kept

    no_reason = seller.post(f"/orders/{order_id}/changes/new",
                            data=_add_milestone_form(token, reason="", _action="submit"))
    assert no_reason.status_code == 422
    assert 'id="reason-error"' in no_reason.text

    nothing = seller.post(f"/orders/{order_id}/changes/new", data={"csrf_token": token, "reason": "x"})
    assert nothing.status_code == 422
    assert "nothing to change" in nothing.text


def test_declining_a_change_keeps_the_plan(runtime: Runtime, login: Login, pair: tuple[str, str]) -> None:
    order_id, _ = pair
    seller = login("seller@example.com")
    token = csrf_of(seller, f"/orders/{order_id}/changes/new")
    seller.post(f"/orders/{order_id}/changes/new", data=_add_milestone_form(token, _action="submit"))
    with runtime.reading() as ctx:
        (change,) = changes_repo.changes_of(ctx.session, order_id)
    buyer = login("buyer@example.com")
    answer = buyer.post(f"/changes/{change.id}/decline",
                        data={"csrf_token": csrf_of(buyer), "note": "Not in the budget."})
    assert answer.status_code == 200 and "Change declined" in answer.text
    assert "Earlier change orders" in answer.text and "Not in the budget." in answer.text
    order, _ = get_order(runtime, order_id)
    assert order.plan_version == 1
    # The proposer cannot answer their own change.
    assert seller.post(f"/changes/{change.id}/accept", data={"csrf_token": csrf_of(seller)}).status_code == 409


def test_extension_request_then_buyer_accepts(runtime: Runtime, login: Login, pair: tuple[str, str]) -> None:
    order_id, _ = pair
    _, milestones = get_order(runtime, order_id)
    first = milestones[0]
    seller = login("seller@example.com")
    page = seller.get(f"/orders/{order_id}")
    assert "Ask for more days" in page.text
    token = csrf_of(seller)
    url = f"/orders/{order_id}/milestones/{first.id}/extensions"
    bad = seller.post(url, data={"csrf_token": token, "days": "lots", "reason": ""})
    assert bad.status_code == 422
    assert f'id="extend-{first.id}-days"' in bad.text and 'id="days-error"' in bad.text
    ok = seller.post(url, data={"csrf_token": token, "days": "3", "reason": "The fonts arrived late."},
                     follow_redirects=False)
    assert ok.status_code == 303

    buyer = login("buyer@example.com")
    assert "3 more days asked" in buyer.get("/").text
    page = buyer.get(f"/orders/{order_id}")
    assert "The fonts arrived late." in page.text and "48 hours" in page.text
    with runtime.reading() as ctx:
        (ext,) = changes_repo.extensions_of(ctx.session, order_id)
    buyer.post(f"/extensions/{ext.id}/accept", data={"csrf_token": csrf_of(buyer)})
    _, after = get_order(runtime, order_id)
    assert after[0].due_at is not None and first.due_at is not None
    assert after[0].due_at - first.due_at == timedelta(days=3)


def test_reviews_after_a_cancel_one_per_party(runtime: Runtime, login: Login, pair: tuple[str, str]) -> None:
    order_id, _ = pair
    buyer = login("buyer@example.com")
    assert "Leave the review" not in buyer.get(f"/orders/{order_id}").text  # still running
    with runtime.unit_of_work() as ctx:
        from milepost.accounts import service as accounts

        actor = accounts.find_by_email(ctx.session, "buyer@example.com")
        assert actor is not None
        orders.cancel(ctx, actor=actor, order_id=order_id, reason="Plans changed.")
    page = buyer.get(f"/orders/{order_id}")
    assert 'name="rating"' in page.text and "<legend>Your rating of Sam Seller</legend>" in page.text
    token = csrf_of(buyer)
    missing = buyer.post(f"/orders/{order_id}/reviews", data={"csrf_token": token, "text": "ok"})
    assert missing.status_code == 422 and 'id="rating-error"' in missing.text
    done = buyer.post(f"/orders/{order_id}/reviews",
                      data={"csrf_token": token, "rating": "4", "text": "Kind about the cancel."})
    assert done.status_code == 200 and "Kind about the cancel." in done.text
    assert "Leave the review" not in done.text
    again = buyer.post(f"/orders/{order_id}/reviews", data={"csrf_token": token, "rating": "5"})
    assert again.status_code == 409
    seller = login("seller@example.com")
    seller.post(f"/orders/{order_id}/reviews", data={"csrf_token": csrf_of(seller), "rating": "5"})
    text = seller.get(f"/orders/{order_id}").text
    assert "You and Bea Buyer" in text and "4.5 / 5 average" in text
    assert_invariants(runtime)


def test_new_forms_need_the_csrf_token(runtime: Runtime, login: Login, pair: tuple[str, str]) -> None:
    order_id, _ = pair
    _, milestones = get_order(runtime, order_id)
    seller = login("seller@example.com")
    for url, data in [
        (f"/orders/{order_id}/changes/new", _add_milestone_form("forged-token-forged-token", _action="submit")),
        (f"/orders/{order_id}/milestones/{milestones[0].id}/extensions", {"days": "2", "reason": "x"}),
        (f"/orders/{order_id}/reviews", {"rating": "5"}),
        ("/changes/chg_x/accept", {}),
        ("/extensions/ext_x/decline", {}),
    ]:
        answer = seller.post(url, data=data)
        assert answer.status_code == 403, url
        assert "expired" in answer.text
    with runtime.reading() as ctx:
        assert not changes_repo.changes_of(ctx.session, order_id)
        assert not changes_repo.extensions_of(ctx.session, order_id)


def test_strangers_get_404_on_every_new_page_and_action(
    runtime: Runtime, login: Login, pair: tuple[str, str]
) -> None:
    order_id, _ = pair
    _, milestones = get_order(runtime, order_id)
    seller = login("seller@example.com")
    token = csrf_of(seller, f"/orders/{order_id}/changes/new")
    seller.post(f"/orders/{order_id}/changes/new", data=_add_milestone_form(token, _action="submit"))
    seller.post(f"/orders/{order_id}/milestones/{milestones[0].id}/extensions",
                data={"csrf_token": token, "days": "2", "reason": "Busy week."})
    with runtime.reading() as ctx:
        (change,) = changes_repo.changes_of(ctx.session, order_id)
        (ext,) = changes_repo.extensions_of(ctx.session, order_id)
    eve = login("eve@example.com")
    token = csrf_of(eve)
    assert eve.get(f"/orders/{order_id}/changes/new").status_code == 404
    for url, data in [
        (f"/orders/{order_id}/changes/new", _add_milestone_form(token, _action="submit")),
        (f"/changes/{change.id}/accept", {"csrf_token": token}),
        (f"/changes/{change.id}/decline", {"csrf_token": token}),
        (f"/extensions/{ext.id}/accept", {"csrf_token": token}),
        (f"/extensions/{ext.id}/decline", {"csrf_token": token}),
        (f"/orders/{order_id}/milestones/{milestones[0].id}/extensions",
         {"csrf_token": token, "days": "2", "reason": "x"}),
        (f"/orders/{order_id}/reviews", {"csrf_token": token, "rating": "1"}),
    ]:
        assert eve.post(url, data=data).status_code == 404, url
    with runtime.reading() as ctx:
        assert changes_repo.get_change(ctx.session, change.id).status == "proposed"  # type: ignore[union-attr]
        assert changes_repo.get_extension(ctx.session, ext.id).status == "requested"  # type: ignore[union-attr]


def test_plan_builder_uses_the_planning_services(runtime: Runtime, login: Login, pair: tuple[str, str]) -> None:
    seller = login("seller@example.com")
    page = seller.get("/orders/new?counterparty=buyer@example.com")
    assert "History with Bea Buyer" in page.text
    assert "1 running" in page.text  # the funded order between them
    assert "No acceptance criteria." in page.text  # the blank rows have none
    assert "Suggested plan shape:" in page.text
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    preview = seller.post("/orders/new", data={
        "csrf_token": token, "_action": "preview", "role": "seller",
        "counterparty_email": "buyer@example.com", "currency": "USD",
        "milestones[0].title": "All", "milestones[0].amount": "900", "milestones[0].due_days": "10",
        "milestones[0].criteria": "done",
        "milestones[1].title": "Tail", "milestones[1].amount": "100", "milestones[1].due_days": "10",
        "milestones[1].criteria": "done",
    })
    assert 'data-code="concentrated_amount"' in preview.text
    assert "Most of the money in one milestone." in preview.text
