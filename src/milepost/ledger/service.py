"""Booking transfers. The only code that writes postings."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import insert

from milepost.db import insert_now, new_id
from milepost.events import service as events
from milepost.ledger import postings
from milepost.ledger.models import ClearingLot, Posting, Transfer
from milepost.timers import service as timers

if TYPE_CHECKING:
    from milepost.accounts.models import User
    from milepost.context import Ctx
    from milepost.orders.models import Milestone, Order

# Ledger rows are written with prebuilt Core inserts, not ORM objects: they are append-only and
# nothing in the command reads them back but the transfer id, which RETURNING hands over. The ORM's
# unit of work for them (identity map, flush ordering, one round trip per object) was most of the
# Python an approval cost (bench/README.md).
_INSERT_TRANSFER = insert(Transfer).returning(Transfer.id)
_INSERT_POSTINGS = insert(Posting)
_INSERT_LOT = insert(ClearingLot)


class BookedTransfer(NamedTuple):
    id: int
    kind: str
    idempotency_key: str


def book(
    ctx: Ctx,
    spec: postings.TransferSpec,
    *,
    key: str,
    order_id: str | None = None,
    milestone_id: str | None = None,
    lot_id: str | None = None,
    payout_id: str | None = None,
    external_ref: str | None = None,
    memo: str = "",
    actor: User | None = None,
    actor_role: str = "system",
) -> BookedTransfer:
    """Insert one transfer with its postings and its event.

    The unique `key` makes a second booking of the same movement fail at the database, so a race
    that slipped past the state checks still cannot move money twice.
    """
    transfer_id: int = insert_now(
        ctx.session,
        _INSERT_TRANSFER,
        {
            "kind": spec.kind,
            "currency": spec.currency,
            "idempotency_key": key,
            "order_id": order_id,
            "milestone_id": milestone_id,
            "lot_id": lot_id,
            "payout_id": payout_id,
            "external_ref": external_ref,
            "memo": memo[:300],
            "created_at": ctx.now,
        },
    ).scalar_one()
    insert_now(
        ctx.session,
        _INSERT_POSTINGS,
        [
            {"transfer_id": transfer_id, "account": p.account, "currency": spec.currency, "amount": p.amount}
            for p in spec.postings
        ],
    )
    events.record(
        ctx,
        f"transfer.{spec.kind}",
        order_id=order_id,
        milestone_id=milestone_id,
        actor=actor,
        actor_role=actor_role,
        payload={
            "transfer_id": transfer_id,
            "kind": str(spec.kind),
            "currency": spec.currency,
            "postings": [{"account": p.account, "amount": p.amount} for p in spec.postings],
        },
    )
    return BookedTransfer(transfer_id, spec.kind, key)


def release_to_seller(
    ctx: Ctx, *, order: Order, milestone: Milestone, amount: int, actor_role: str = "system"
) -> str | None:
    """Release `amount` of a milestone's escrow to the seller: fee to the platform, net into clearing.

    The net amount becomes a clearing lot available after the order's clearance days. Returns the
    lot's id (None when there was nothing to release).
    """
    if amount <= 0:
        return None
    rel = postings.release(
        order_id=order.id,
        seller_id=order.seller_id,
        currency=order.currency,
        amount=amount,
        seller_fee_bps=order.seller_fee_bps,
    )
    lot_id = new_id("lot")
    transfer = book(
        ctx,
        rel.transfer,
        key=f"release:{milestone.id}",
        order_id=order.id,
        milestone_id=milestone.id,
        lot_id=lot_id,
        memo=f"{order.title} — #{milestone.seq} {milestone.title}",
        actor_role=actor_role,
    )
    milestone.released_amount += amount
    available_at = ctx.now + timedelta(days=order.clearance_days)
    # The fee took everything: nothing to clear. A lot due already clears in this transaction.
    clears_now = rel.net == 0 or available_at <= ctx.now
    insert_now(
        ctx.session,
        _INSERT_LOT,
        {
            "id": lot_id,
            "seller_id": order.seller_id,
            "order_id": order.id,
            "milestone_id": milestone.id,
            "currency": order.currency,
            "gross_amount": rel.gross,
            "fee_amount": rel.fee,
            "amount": rel.net,
            "released_at": ctx.now,
            "available_at": available_at,
            "cleared_at": ctx.now if clears_now else None,
            "release_transfer_id": transfer.id,
        },
    )
    if clears_now:
        if rel.net:
            _book_clear(ctx, lot_id=lot_id, seller_id=order.seller_id, currency=order.currency,
                        amount=rel.net, order_id=order.id, milestone_id=milestone.id)
    else:
        timers.schedule(
            ctx,
            kind="clear_lot",
            due_at=available_at,
            dedupe_key=f"clear:{lot_id}",
            order_id=order.id,
            milestone_id=milestone.id,
            subject_id=lot_id,
        )
    return lot_id


def refund_to_buyer(
    ctx: Ctx, *, order: Order, milestone: Milestone, amount: int, reason: str,
    actor_role: str = "system",
) -> BookedTransfer | None:
    """Return `amount` of a milestone's escrow to the buyer, with the buyer fee on it."""
    if amount <= 0:
        return None
    kept_before = milestone.funded_amount - milestone.refunded_amount
    ref = postings.refund(
        order_id=order.id,
        currency=order.currency,
        amount=amount,
        funded=milestone.funded_amount,
        kept_before=kept_before,
        buyer_fee_bps=order.buyer_fee_bps,
    )
    key = f"refund:{milestone.id}:{reason}"
    external = ctx.provider.refund(
        payee_id=order.buyer_id, amount=amount + ref.buyer_fee_refund, currency=order.currency,
        reference=key,
    )
    transfer = book(
        ctx,
        ref.transfer,
        key=key,
        order_id=order.id,
        milestone_id=milestone.id,
        external_ref=external,
        memo=f"refund ({reason}) — #{milestone.seq} {milestone.title}",
        actor_role=actor_role,
    )
    milestone.refunded_amount += amount
    milestone.buyer_fee_amount -= ref.buyer_fee_refund
    return transfer


def clear_lot(ctx: Ctx, lot: ClearingLot) -> BookedTransfer | None:
    """Move a due lot from clearing to available, exactly once."""
    if lot.cleared_at is not None:
        return None
    transfer = _book_clear(ctx, lot_id=lot.id, seller_id=lot.seller_id, currency=lot.currency,
                           amount=lot.amount, order_id=lot.order_id, milestone_id=lot.milestone_id)
    lot.cleared_at = ctx.now
    return transfer


def _book_clear(
    ctx: Ctx, *, lot_id: str, seller_id: str, currency: str, amount: int, order_id: str, milestone_id: str
) -> BookedTransfer:
    spec = postings.clear(seller_id=seller_id, currency=currency, amount=amount)
    return book(ctx, spec, key=f"clear:{lot_id}", order_id=order_id, milestone_id=milestone_id,
                lot_id=lot_id, memo="cleared")
