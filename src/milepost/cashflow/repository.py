"""Cash-flow queries: aggregates in SQL, a handful of queries per report, never one per milestone.

Everything here reads; nothing writes. Exports stream postings with `yield_per` (a server-side cursor
on PostgreSQL), so memory stays flat however long the ledger is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy import null as null_
from sqlalchemy.orm import Session

from milepost.cashflow.projection import OPEN_ORDER_STATUSES
from milepost.ledger import postings
from milepost.ledger.models import ClearingLot, Posting, Transfer
from milepost.orders.models import Milestone, Order
from milepost.orders.states import MilestoneStatus
from milepost.payouts.models import Payout

STREAM_BATCH = 2_000


# ---------------------------------------------------------------------------------------------
# Balances
# ---------------------------------------------------------------------------------------------


def seller_account_balances(session: Session, seller_id: str) -> dict[tuple[str, str], int]:
    """{(account, currency): balance} of the seller's clearing and available accounts."""
    rows = session.execute(
        select(Posting.account, Posting.currency, func.sum(Posting.amount))
        .where(
            Posting.account.in_(
                [postings.clearing_account(seller_id), postings.available_account(seller_id)]
            )
        )
        .group_by(Posting.account, Posting.currency)
    ).all()
    return {(account, currency): int(total) for account, currency, total in rows}


def ledger_sums(session: Session, user_id: str) -> dict[str, dict[str, int]]:
    """Per currency, what the balances page sums from postings, in one statement: the user's
    `clearing` and `available` balances and `paid_out` as a seller, and as a buyer what they `paid`,
    got `refunded`, and still have in `escrow` (their orders' postings on the world and escrow
    accounts)."""
    result: dict[str, dict[str, int]] = {}
    params = {"clearing": postings.clearing_account(user_id), "available": postings.available_account(user_id),
              "user_id": user_id}
    for name, currency, total in session.connection().execute(_ledger_sums_statement(), params):
        result.setdefault(currency, {})[name] = int(total)
    for sums in result.values():
        sums["paid_out"] = -sums.get("paid_out", 0)
        sums["paid"] = -sums.get("paid", 0)
    return result


@functools.cache
def _ledger_sums_statement() -> Any:
    clearing, available = bindparam("clearing", type_=String()), bindparam("available", type_=String())
    account = case((Posting.account == clearing, "clearing"), else_="available")
    flow = case(
        (Posting.account == postings.WORLD_PAYMENTS, "paid"),
        (Posting.account == postings.WORLD_REFUNDS, "refunded"),
        (Posting.account.like("escrow:%"), "escrow"),
        else_="other",
    )
    total = func.sum(Posting.amount)
    return union_all(
        select(account, Posting.currency, total)
        .where(Posting.account.in_([clearing, available]))
        .group_by(account, Posting.currency),
        select(literal("paid_out"), Posting.currency, total)
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(Posting.account == available, Transfer.kind == postings.TransferKind.PAYOUT)
        .group_by(Posting.currency),
        select(flow, Posting.currency, total)
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .join(Order, Order.id == Transfer.order_id)
        .where(Order.buyer_id == bindparam("user_id", type_=String()))
        .group_by(flow, Posting.currency),
    )


@dataclass(frozen=True, slots=True)
class EscrowRow:
    order_id: str
    title: str
    currency: str
    amount: int


@dataclass(frozen=True, slots=True)
class EscrowSummary:
    """Money in escrow for one party: totals over every order, and one page of the orders."""

    totals: dict[str, tuple[int, int]]  # currency → (amount in escrow, orders holding some)
    page: list[EscrowRow]  # by order id (byte order), the first `limit` + 1 after the cursor


def escrow_summary(
    session: Session,
    *,
    seller_id: str | None = None,
    buyer_id: str | None = None,
    limit: int | None = 0,
    after: str | None = None,
) -> EscrowSummary:
    """Money still in escrow for the seller's (or buyer's) orders: per currency the sum and the
    number of orders holding some, and the orders themselves a page at a time — the first
    `limit` + 1 (all of them when None, none when 0) whose id sorts after `after`.

    Reads the escrow per order (`cashflow.models.OrderEscrow`: the sum of the order's milestones'
    cached funded − released − refunded, kept by `cashflow.projector`) — the party's rows alone, no
    join and no grouping of milestones; the audit proves they equal the milestones' caches, and
    ledger invariant 3 that those equal the escrow account's postings. One statement.
    """
    from milepost.cashflow.projector import write_pending

    write_pending(session)  # this transaction's own changes first
    dialect = session.get_bind().dialect.name
    params = {
        "party_id": seller_id if seller_id is not None else buyer_id,
        "limit": 2**62 if limit is None else limit + 1 if limit else 0,
        "after": after if after is not None else "",
    }
    totals: dict[str, tuple[int, int]] = {}
    page: list[EscrowRow] = []
    for kind, currency, order_id, amount, count_or_title in session.connection().execute(
        _escrow_statement(dialect, seller_id is not None), params
    ):
        if kind == 0:
            totals[currency] = (int(amount), int(count_or_title))
        else:
            page.append(EscrowRow(order_id, count_or_title, currency, int(amount)))
    page.sort(key=lambda row: row.order_id)  # ids are ASCII: Python's order is the byte order
    return EscrowSummary(totals, page)


def _title_of(model: Any, id_: Any, dialect: str) -> Any:
    """The title of the order or milestone `id_`, a read model's byte-ordered id: a primary-key
    lookup per row of a (short) page, not a join, compared in the primary key's own collation so
    that PostgreSQL uses its index."""
    key = id_.collate("default") if dialect == "postgresql" else id_
    return select(model.title).where(model.id == key).scalar_subquery()


@functools.cache
def _escrow_statement(dialect: str, as_seller: bool) -> Any:
    from milepost.cashflow.models import OrderEscrow

    e = OrderEscrow.__table__.c
    party = (e.seller_id if as_seller else e.buyer_id) == bindparam("party_id", type_=String())
    # The party's rows of the escrow per order: totals over all of them, and a page in id order —
    # byte order, the `(party, order_id)` index's: one index range. Titles for the page only.
    page = (
        select(e.order_id, e.currency, e.amount)
        .where(party, e.order_id > bindparam("after", type_=String()))
        .order_by(e.order_id)
        .limit(bindparam("limit", type_=BigInteger()))
        .subquery("page")
    )
    p = page.c
    title = _title_of(Order, p.order_id, dialect)
    text_ = String()
    return union_all(
        select(literal(0, Integer()), e.currency, cast(null_(), text_), cast(func.sum(e.amount), BigInteger()),
               cast(func.count(), text_))
        .where(party)
        .group_by(e.currency),
        select(literal(1, Integer()), p.currency, p.order_id, p.amount, title),
    )


def escrow_by_order(session: Session, *, seller_id: str | None = None, buyer_id: str | None = None) -> list[EscrowRow]:
    """Every order of the seller (or buyer) with money in escrow, by order id."""
    return escrow_summary(session, seller_id=seller_id, buyer_id=buyer_id, limit=None).page


# ---------------------------------------------------------------------------------------------
# Forecast inputs
# ---------------------------------------------------------------------------------------------

FORECAST_MILESTONE_COLUMNS = (
    Order.id, Order.title, Order.currency, Order.release, Order.review_days, Order.clearance_days,
    Order.seller_fee_bps, Order.buyer_fee_bps, Order.late_grace_hours, Order.dispute_negotiation_days,
    Order.funding, Order.agreed_at,
    Milestone.id, Milestone.seq, Milestone.title, Milestone.status, Milestone.amount, Milestone.due_days,
    Milestone.funded_amount, Milestone.released_amount, Milestone.refunded_amount,
    Milestone.held_for_seller_amount, Milestone.due_at, Milestone.review_due_at,
)


def open_milestone_rows(
    session: Session, *, seller_id: str | None = None, buyer_id: str | None = None
) -> Sequence[Any]:
    """Plain rows (not ORM objects: 10k of them must load in milliseconds) of every milestone of the
    party's agreed or active orders that can still bring or cost money, ordered by order and seq."""
    party = Order.seller_id == seller_id if seller_id is not None else Order.buyer_id == buyer_id
    return session.execute(
        select(*FORECAST_MILESTONE_COLUMNS)
        .join(Milestone, Milestone.order_id == Order.id)
        .where(party, Order.status.in_(OPEN_ORDER_STATUSES), _still_open())
        .order_by(Order.id, Milestone.seq)
    ).all()


def _still_open() -> ColumnElement[bool]:
    """A milestone that can still bring or cost money: not closed, or holding money for the seller."""
    return or_(
        Milestone.status.not_in(
            [MilestoneStatus.APPROVED, MilestoneStatus.RESOLVED, MilestoneStatus.CANCELLED]
        ),
        Milestone.held_for_seller_amount > 0,
    )


def open_lot_rows(session: Session, seller_id: str) -> Sequence[Any]:
    return session.execute(
        select(
            ClearingLot.id, ClearingLot.order_id, Order.title, ClearingLot.milestone_id, Milestone.seq,
            Milestone.title, ClearingLot.currency, ClearingLot.gross_amount, ClearingLot.fee_amount,
            ClearingLot.amount, ClearingLot.released_at, ClearingLot.available_at,
        )
        .join(Order, Order.id == ClearingLot.order_id)
        .join(Milestone, Milestone.id == ClearingLot.milestone_id)
        .where(ClearingLot.seller_id == seller_id, ClearingLot.cleared_at.is_(None))
        .order_by(ClearingLot.available_at, ClearingLot.id)
    ).all()


def disputed_deadlines(session: Session, milestone_ids: Sequence[str]) -> dict[str, datetime]:
    """When the open dispute of each of these milestones was opened (the latest, should there be
    several), in UTC: the start of its negotiation window, which the forecast's chain waits for."""
    from milepost.clock import as_utc
    from milepost.disputes.models import Dispute

    if not milestone_ids:
        return {}
    rows = session.execute(
        select(Dispute.milestone_id, func.max(Dispute.opened_at))
        .where(Dispute.milestone_id.in_(sorted(milestone_ids)), Dispute.resolved_at.is_(None))
        .group_by(Dispute.milestone_id)
    ).all()
    return {mid: as_utc(opened) for mid, opened in rows}


# ---------------------------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------------------------


def cleared_lots(session: Session, seller_id: str, currency: str) -> Sequence[Any]:
    """Every lot that became available, in the order it did (FIFO order for payout statements)."""
    return session.execute(
        select(
            ClearingLot.id, ClearingLot.order_id, Order.title, ClearingLot.milestone_id, Milestone.seq,
            Milestone.title, ClearingLot.gross_amount, ClearingLot.fee_amount, ClearingLot.amount,
            ClearingLot.released_at, ClearingLot.cleared_at,
        )
        .join(Order, Order.id == ClearingLot.order_id)
        .join(Milestone, Milestone.id == ClearingLot.milestone_id)
        .where(
            ClearingLot.seller_id == seller_id,
            ClearingLot.currency == currency,
            ClearingLot.cleared_at.is_not(None),
            ClearingLot.amount > 0,
        )
        .order_by(ClearingLot.cleared_at, ClearingLot.id)
    ).all()


def payouts_in(session: Session, seller_id: str, currency: str) -> Sequence[Payout]:
    return session.scalars(
        select(Payout)
        .where(Payout.seller_id == seller_id, Payout.currency == currency)
        .order_by(Payout.created_at, Payout.transfer_id)
    ).all()


def get_payout(session: Session, payout_id: str) -> Payout | None:
    if not isinstance(payout_id, str) or len(payout_id) > 40:
        return None
    return session.get(Payout, payout_id)


def _seller_position_filter(seller_id: str) -> ColumnElement[bool]:
    seller_orders = select(Order.id).where(Order.seller_id == seller_id)
    return or_(
        Posting.account.in_(
            [postings.clearing_account(seller_id), postings.available_account(seller_id)]
        ),
        and_(Posting.account.like("escrow:%"), Transfer.order_id.in_(seller_orders)),
    )


def seller_position(session: Session, seller_id: str, *, before: datetime | None) -> dict[str, dict[str, int]]:
    """Per currency {'escrow', 'clearing', 'available'} of the seller's position before a time."""
    bucket = case(
        (Posting.account == postings.clearing_account(seller_id), "clearing"),
        (Posting.account == postings.available_account(seller_id), "available"),
        else_="escrow",
    )
    query = (
        select(Posting.currency, bucket, func.sum(Posting.amount))
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(_seller_position_filter(seller_id))
        .group_by(Posting.currency, bucket)
    )
    if before is not None:
        query = query.where(Transfer.created_at < before)
    result: dict[str, dict[str, int]] = {}
    for currency, name, total in session.execute(query):
        result.setdefault(currency, {})[name] = int(total)
    return result


def seller_flows(
    session: Session, seller_id: str, *, start: datetime | None, end: datetime | None
) -> dict[str, dict[tuple[str, str], int]]:
    """Per currency {(transfer kind, account bucket): sum} over the seller's transfers in [start, end).

    Buckets: 'escrow' (the seller's orders' escrow), 'clearing', 'available', 'fees'.
    """
    bucket = case(
        (Posting.account == postings.clearing_account(seller_id), "clearing"),
        (Posting.account == postings.available_account(seller_id), "available"),
        (Posting.account == postings.PLATFORM_FEES, "fees"),
        (Posting.account.like("escrow:%"), "escrow"),
        else_="world",
    )
    seller_orders = select(Order.id).where(Order.seller_id == seller_id)
    query = (
        select(Posting.currency, Transfer.kind, bucket, func.sum(Posting.amount))
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(
            or_(
                Transfer.order_id.in_(seller_orders),
                Posting.account.in_(
                    [postings.clearing_account(seller_id), postings.available_account(seller_id)]
                ),
            )
        )
        .group_by(Posting.currency, Transfer.kind, bucket)
    )
    if start is not None:
        query = query.where(Transfer.created_at >= start)
    if end is not None:
        query = query.where(Transfer.created_at < end)
    result: dict[str, dict[tuple[str, str], int]] = {}
    for currency, kind, name, total in session.execute(query):
        result.setdefault(currency, {})[(kind, name)] = int(total)
    return result


# ---------------------------------------------------------------------------------------------
# Export streams
# ---------------------------------------------------------------------------------------------


def transfer_scope(user_id: str | None) -> ColumnElement[bool]:
    """Which transfers an export holds: all of them (operator, CLI) or one user's.

    A user's transfers are those of orders they buy or sell in, and their own payouts. Whole
    transfers are exported (every posting, also the platform's and the outside world's legs), so
    each exported transaction balances on its own.
    """
    if user_id is None:
        return true()
    return or_(
        Transfer.order_id.in_(
            select(Order.id).where(or_(Order.seller_id == user_id, Order.buyer_id == user_id))
        ),
        Transfer.payout_id.in_(select(Payout.id).where(Payout.seller_id == user_id)),
    )


def _in_period(start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(Transfer.created_at >= start)
    if end is not None:
        conditions.append(Transfer.created_at < end)
    return conditions


def count_postings(session: Session, scope: ColumnElement[bool], *, start: datetime | None, end: datetime | None) -> int:
    query = (
        select(func.count(Posting.id))
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(scope, *_in_period(start, end))
    )
    return int(session.scalar(query) or 0)


def first_transfer_at(session: Session, scope: ColumnElement[bool], *, end: datetime | None) -> datetime | None:
    query = select(func.min(Transfer.created_at)).where(scope, *_in_period(None, end))
    value = session.scalar(query)
    if value is None:
        return None
    from milepost.clock import as_utc

    return as_utc(value)


def stream_accounts(session: Session, scope: ColumnElement[bool], *, end: datetime | None) -> Iterator[str]:
    """Distinct accounts used by the scope up to `end`, sorted — streamed."""
    query = (
        select(Posting.account)
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(scope, *_in_period(None, end))
        .group_by(Posting.account)
        .order_by(Posting.account)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for (account,) in session.execute(query):
        yield account


def currencies_used(session: Session, scope: ColumnElement[bool], *, end: datetime | None) -> list[str]:
    query = (
        select(Transfer.currency).where(scope, *_in_period(None, end)).group_by(Transfer.currency)
        .order_by(Transfer.currency)
    )
    return list(session.scalars(query))


def stream_opening_balances(
    session: Session, scope: ColumnElement[bool], *, before: datetime
) -> Iterator[tuple[str, str, int]]:
    """(account, currency, balance) of the scope's postings before `before`, non-zero only."""
    total = func.sum(Posting.amount)
    query = (
        select(Posting.account, Posting.currency, total)
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(scope, Transfer.created_at < before)
        .group_by(Posting.account, Posting.currency)
        .having(total != 0)
        .order_by(Posting.currency, Posting.account)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for account, currency, amount in session.execute(query):
        yield account, currency, int(amount)


@dataclass(frozen=True, slots=True)
class PostingRow:
    transfer_id: int
    created_at: datetime
    kind: str
    currency: str
    idempotency_key: str
    order_id: str | None
    milestone_id: str | None
    lot_id: str | None
    payout_id: str | None
    memo: str
    posting_id: int
    account: str
    amount: int


def stream_postings(
    session: Session, scope: ColumnElement[bool], *, start: datetime | None, end: datetime | None
) -> Iterator[PostingRow]:
    """Every posting of the scope in [start, end), in transfer then posting order, streamed in
    batches (a server-side cursor on PostgreSQL): memory stays flat for any ledger size."""
    from milepost.clock import as_utc

    query = (
        select(
            Transfer.id, Transfer.created_at, Transfer.kind, Transfer.currency, Transfer.idempotency_key,
            Transfer.order_id, Transfer.milestone_id, Transfer.lot_id, Transfer.payout_id, Transfer.memo,
            Posting.id, Posting.account, Posting.amount,
        )
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(scope, *_in_period(start, end))
        .order_by(Transfer.id, Posting.id)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for row in session.execute(query):
        yield PostingRow(
            row[0], as_utc(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9] or "",
            row[10], row[11], int(row[12]),
        )


# ---------------------------------------------------------------------------------------------
# Forecast in SQL: the seller's schedule rows, totalled and paged by the database
# ---------------------------------------------------------------------------------------------


MAX_DAY_SEGMENTS = 16  # runs of equal-length local days the database can bucket lines into


def _local_day(instant: Any) -> Any:
    """The index of the viewer's local day holding `instant` (µs), by arithmetic over the runs of
    equal-length days (`forecast.LocalDays.segments`, bound as `seg_start_i`, `seg_first_i`,
    `seg_length_i` and `days_end`); NULL outside them. Unused segments repeat `days_end`."""
    start = [bindparam(f"seg_start_{i}", type_=BigInteger()) for i in range(MAX_DAY_SEGMENTS)]
    ends = [*start[1:], bindparam("days_end", type_=BigInteger())]
    return case(
        (instant < start[0], None),
        *((instant < ends[i], bindparam(f"seg_first_{i}", type_=BigInteger())
           + (instant - start[i]) // bindparam(f"seg_length_{i}", type_=BigInteger()))
          for i in range(MAX_DAY_SEGMENTS)),
        else_=None,
    )


def _day_params(segments: Sequence[tuple[int, int, int]], end_us: int) -> dict[str, int]:
    if len(segments) > MAX_DAY_SEGMENTS:
        segments = ()  # (an unusual zone: every line dated exactly, in Python)
    params = {"days_end": end_us}
    for i in range(MAX_DAY_SEGMENTS):
        start, first, length = segments[i] if i < len(segments) else (end_us, 0, 1)
        params |= {f"seg_start_{i}": start, f"seg_first_{i}": first, f"seg_length_{i}": length}
    return params


def _gt(left: Sequence[Any], right: Sequence[Any]) -> ColumnElement[bool]:
    """(a, b, …) > (x, y, …), spelled out (row values compare differently across databases)."""
    (a, *rest_a), (x, *rest_x) = left, right
    if not rest_a:
        return a > x
    return or_(a > x, and_(a == x, _gt(rest_a, rest_x)))


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """What `milestone_schedule` returns: plain tuples, few of them whatever the seller's size."""

    day_totals: list[tuple[str, int, int | None, int | None, int, int]]
    # (currency, rank, local day index or None, expected_us when outside the days, net sum, lines)
    page: list[tuple[Any, ...]]
    # (expected_us, rank, currency, order_id, seq, milestone_id, net, gross, fee, late, funded,
    #  order_title, milestone_title), sorted by the schedule key, at most `limit` + 1 of them
    excluded: list[tuple[Any, ...]]
    # (currency, gross, order_id, order_title, milestone_id, seq, milestone_title), by order and seq


def milestone_schedule(
    session: Session,
    seller_id: str,
    *,
    now_us: int,
    days: Sequence[tuple[int, int, int]],
    days_end_us: int,
    limit: int | None,
    after: tuple[int, int, str, str, int, str] | None,
) -> ScheduleResult:
    """The forecast of every open milestone of the seller, from the seller's rows of the forecast
    schedule (`cashflow.models.ScheduleRow`, kept current by `cashflow.projector`) in one statement.

    Each row's date is ``max(base_us, now + lag_us)`` (`cashflow.projection`; tests hold it equal to
    `forecast.milestone_lines` at any `now`). Returns the net sums per (currency, certainty, local
    day) — `days` are the viewer's local days as runs of equal-length days up to `days_end_us`
    (`forecast.LocalDays.segments`); lines outside them come back per exact instant — the first
    `limit` + 1 lines after the `after` key (all of them when `limit` is None), and the disputed
    (excluded) milestones.
    """
    from milepost.cashflow.projector import write_pending

    write_pending(session)  # this transaction's own changes first
    dialect = session.get_bind().dialect.name
    first = after or (-(2**63), -1, "", "", -1, "")
    params = {
        "seller_id": seller_id, "now_us": now_us, "limit": 2**62 if limit is None else limit + 1,
        **_day_params(days, days_end_us), **{f"after_{i}": value for i, value in enumerate(first)},
    }
    day_totals: list[tuple[str, int, int | None, int | None, int, int]] = []
    page_rows: list[tuple[Any, ...]] = []
    excluded: list[tuple[Any, ...]] = []
    for row in session.connection().execute(_schedule_statement(dialect, after is not None), params):
        kind = row[0]
        if kind == 0:
            day_totals.append((row[3], row[2], row[14], row[1], int(row[7]), int(row[8])))
        elif kind == 1:
            page_rows.append((int(row[1]), row[2], row[3], row[4], row[5], row[6], int(row[7]), int(row[8]),
                              int(row[9]), bool(row[10]), bool(row[11]), row[12], row[13]))
        else:
            excluded.append((row[3], int(row[8]), row[4], row[12], row[6], row[5], row[13]))
    # The two kinds of candidates merged here (the schedule table's text is ordered byte by byte,
    # as Python orders str): the page is the first `limit` + 1 of them.
    page_rows.sort(key=lambda r: r[:6])
    del page_rows[params["limit"]:]
    excluded.sort(key=lambda r: (r[2], r[5]))
    return ScheduleResult(day_totals, page_rows, excluded)


@functools.cache
def _schedule_statement(dialect: str, has_after: bool) -> Any:
    """The statement of `milestone_schedule`, built once per dialect and kind of page (first, or
    after a cursor); building it costs more than running it, so everything else that varies is a
    bound parameter.

    Three kinds of rows in one shape: 0 the net sums per (currency, certainty, local day) over
    every line of the seller, 1 the candidates for the page, 2 the excluded (disputed) milestones.
    A line is at its base until `slides_from_us`, then slides with now (`ScheduleRow`): the page's
    candidates are the first lines at their base in index order (`ix_forecast_schedule_dated`, whose
    columns are the schedule key) and the first lines already sliding (`ix_forecast_schedule_sliding`,
    a range of the few late ones) — at most 2 × (limit + 1) rows read, whatever the seller's size.
    Only the candidates look up their titles.
    """
    from milepost.cashflow.models import ScheduleRow
    from milepost.cashflow.projection import EXCLUDED, NEVER

    s = ScheduleRow.__table__.c
    now = bindparam("now_us", type_=BigInteger())
    later = now + s.lag_us
    expected = case((s.base_us > later, s.base_us), else_=later)
    mine = s.seller_id == bindparam("seller_id", type_=String())
    line = s.rank != EXCLUDED
    # the line's local day, computed once: in the grouping it would run once per expression using it
    lines = (
        select(s.currency.label("currency"), s.rank.label("rank"), (s.gross - s.fee).label("net"),
               expected.label("expected_us"), _local_day(expected).label("day"))
        .where(mine, line)
        .offset(0)  # (a subquery PostgreSQL does not merge into the grouping)
        .subquery("lines")
    )
    c = lines.c
    at = case((c.day.is_(None), c.expected_us), else_=None)
    after = [bindparam(f"after_{i}", type_=t) for i, t in
             enumerate((BigInteger(), Integer(), String(), String(), Integer(), String()))]
    limit = bindparam("limit", type_=BigInteger())
    rest = (s.rank, s.currency, s.order_id, s.seq, s.milestone_id)

    def candidates(name: str, date: Any, where: list[Any], key: tuple[Any, ...]) -> Any:
        return (
            select(date.label("expected_us"), *rest, s.gross, s.fee,
                   and_(s.late_after_us.is_not(None), now > s.late_after_us).label("late"), s.funded)
            .where(mine, line, *where).order_by(*key).limit(limit).subquery(name)
        )

    # at their base: the index order is the schedule order (a row comparison is an index range)
    at_base = candidates("at_base", s.base_us,
                         [s.slides_from_us >= now, *([tuple_(s.base_us, *rest) > tuple_(*after)] if has_after else [])],
                         (s.base_us, *rest))
    # sliding with now: dated now + lag, so in lag order
    sliding = candidates("sliding", later,
                         [s.slides_from_us < now, *([_gt((later, *rest), after)] if has_after else [])],
                         (s.lag_us, *rest))

    def null(type_: Any) -> Any:
        return cast(null_(), type_)

    def title_of(model: Any, id_: Any) -> Any:
        return _title_of(model, id_, dialect)

    text_, big, int_, bool_ = String(), BigInteger(), Integer(), Boolean()
    m, o = Milestone, Order
    return union_all(
        select(literal(0, int_), at, c.rank, c.currency, null(text_), null(int_), null(text_),
               cast(func.sum(c.net), big), cast(func.count(), big), null(big), null(bool_), null(bool_),
               null(text_), null(text_), c.day)
        .group_by(c.currency, c.rank, c.day, at),
        *(
            select(literal(1, int_), p.expected_us, p.rank, p.currency, p.order_id, p.seq, p.milestone_id,
                   p.gross - p.fee, p.gross, p.fee, p.late, p.funded, title_of(o, p.order_id),
                   title_of(m, p.milestone_id), null(int_))
            for p in (at_base.c, sliding.c)
        ),
        # excluded rows are dated NEVER: the first range of the seller's dated index
        select(literal(2, int_), null(big), s.rank, s.currency, s.order_id, s.seq, s.milestone_id, null(big),
               s.gross, null(big), null(bool_), null(bool_), title_of(o, s.order_id),
               title_of(m, s.milestone_id), null(int_))
        .where(mine, s.base_us == NEVER, s.rank == EXCLUDED),
    )
