"""Payouts and the caller's ledger entries. (Balances, forecast and exports live in cashflow.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from milepost.api import idempotency
from milepost.api.deps import ReadCtx, RuntimeDep, UserDep
from milepost.api.errors import problem_responses
from milepost.api.schemas import LedgerPage, PayoutCreate, PayoutOut, PayoutPage
from milepost.context import Ctx
from milepost.ledger import postings
from milepost.ledger import repository as ledger_repo
from milepost.payouts import service as payouts

router = APIRouter(tags=["money"])


def _payout_out(p: Any) -> dict[str, Any]:
    return {"id": p.id, "amount": p.amount, "currency": p.currency, "status": p.status, "provider": p.provider,
            "provider_ref": p.provider_ref, "created_at": p.created_at}


@router.post("/payouts", status_code=201, response_model=PayoutOut, responses=problem_responses(401, 409, 422),
             summary="Seller: withdraw available money (at least the minimum payout)")
def create_payout(body: PayoutCreate, request: Request, runtime: RuntimeDep, user: UserDep) -> Response:
    def action(ctx: Ctx) -> dict[str, Any]:
        return _payout_out(payouts.create_payout(ctx, actor=user, amount=body.amount, currency=body.currency))

    return idempotency.run(request, runtime, principal=user.id, payload=body, action=action, status_code=201)


Cursor = Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


@router.get("/payouts", response_model=PayoutPage, responses=problem_responses(401, 422),
            summary="My payouts, newest first")
def list_payouts(ctx: ReadCtx, user: UserDep, cursor: Cursor = None,
                 limit: Annotated[int, Query(ge=1, le=100)] = 50) -> dict[str, Any]:
    rows = payouts.payouts_of(ctx, user.id, after_id=cursor, limit=limit)
    items = [_payout_out(p) for p in rows]
    return {"items": items, "next_cursor": rows[-1].id if len(rows) == limit else None}


@router.get("/ledger/entries", response_model=LedgerPage, responses=problem_responses(401, 422),
            summary="Postings on my accounts (seller clearing and available), oldest first")
def ledger_entries(
    ctx: ReadCtx,
    user: UserDep,
    cursor: Annotated[str | None, Query(min_length=1, max_length=18, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    accounts = [postings.clearing_account(user.id), postings.available_account(user.id)]
    rows = ledger_repo.entries_for_accounts(ctx.session, accounts, after_id=int(cursor or 0), limit=limit)
    items = [
        {"id": str(p.id), "transfer_id": str(t.id), "kind": t.kind, "account": p.account,
         "currency": p.currency, "amount": p.amount, "order_id": t.order_id, "milestone_id": t.milestone_id,
         "memo": t.memo, "created_at": t.created_at}
        for p, t in rows
    ]
    return {"items": items, "next_cursor": str(rows[-1][0].id) if len(rows) == limit else None}
