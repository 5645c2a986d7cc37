"""Payouts: a seller withdraws available money (at least the minimum) through the provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from milepost.accounts.models import User
from milepost.db import new_id
from milepost.errors import Conflict, InvalidInput
from milepost.events import service as events
from milepost.ledger import postings
from milepost.ledger import repository as ledger_repo
from milepost.ledger import service as ledger
from milepost.money import MAX_AMOUNT, format_money, is_known_currency, major_unit
from milepost.payouts.models import Payout

if TYPE_CHECKING:
    from milepost.context import Ctx


def create_payout(ctx: Ctx, *, actor: User, amount: int, currency: str) -> Payout:
    problems = []
    if not is_known_currency(currency):
        problems.append({"field": "currency", "message": "must be an ISO 4217 currency code"})
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        problems.append({"field": "amount", "message": "must be a positive whole number of minor units"})
    if problems:
        raise InvalidInput("the payout is invalid", errors=problems)
    minimum = ctx.settings.min_payout_major * major_unit(currency)
    if amount < minimum:
        raise InvalidInput(
            f"the minimum payout is {format_money(minimum, currency)}",
            errors=[{"field": "amount", "message": f"must be at least {minimum}"}],
        )
    # Lock the seller: two payouts of the whole balance must not both see it available.
    ctx.session.scalars(
        select(User).where(User.id == actor.id).with_for_update().execution_options(populate_existing=True)
    ).one()
    available = ledger_repo.balance(ctx.session, postings.available_account(actor.id), currency)
    if amount > available:
        raise Conflict(
            f"only {format_money(available, currency)} is available to pay out",
            code="insufficient_available", available=available,
        )
    payout_id = new_id("po")
    ref = ctx.provider.payout(payee_id=actor.id, amount=amount, currency=currency, reference=payout_id)
    transfer = ledger.book(
        ctx, postings.payout(seller_id=actor.id, currency=currency, amount=amount),
        key=f"payout:{payout_id}", payout_id=payout_id, external_ref=ref, memo="payout",
        actor=actor, actor_role="seller",
    )
    payout = Payout(
        id=payout_id, seller_id=actor.id, currency=currency, amount=amount, status="paid",
        provider=ctx.provider.name, provider_ref=ref, transfer_id=transfer.id, created_at=ctx.now,
    )
    ctx.session.add(payout)
    events.record(ctx, "payout.paid", order_id=None, actor=actor, actor_role="seller",
                  payload={"payout_id": payout_id, "amount": amount, "currency": currency})
    return payout


def payouts_of(ctx: Ctx, seller_id: str, *, after_id: str | None = None, limit: int = 50) -> Sequence[Payout]:
    query = select(Payout).where(Payout.seller_id == seller_id)
    if after_id:
        query = query.where(Payout.id < after_id)
    return ctx.session.scalars(query.order_by(Payout.id.desc()).limit(limit)).all()
