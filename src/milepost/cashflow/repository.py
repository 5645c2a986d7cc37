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
    union_all,
)
from sqlalchemy import null as null_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from milepost.ledger import postings
from milepost.ledger.models import ClearingLot, Posting, Transfer
from milepost.orders.models import Milestone, Order
from milepost.orders.states import MilestoneStatus, OrderStatus
from milepost.payouts.models import Payout

OPEN_ORDER_STATUSES = (OrderStatus.AGREED, OrderStatus.ACTIVE)
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


def seller_paid_out(session: Session, seller_id: str) -> dict[str, int]:
    """Per currency: everything the seller withdrew (payout transfers out of `available`)."""
    rows = session.execute(
        select(Posting.currency, func.sum(Posting.amount))
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .where(
            Posting.account == postings.available_account(seller_id),
            Transfer.kind == postings.TransferKind.PAYOUT,
        )
        .group_by(Posting.currency)
    ).all()
    return {currency: -int(total) for currency, total in rows}


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

    Uses the milestones' cached amounts (funded − released − refunded); ledger invariant 3, checked
    by the audit, proves they equal the escrow account's postings. One statement, so the per-order
    sums are computed once for the totals and the page.
    """
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


@functools.cache
def _escrow_statement(dialect: str, as_seller: bool) -> Any:
    held = func.sum(Milestone.funded_amount - Milestone.released_amount - Milestone.refunded_amount)
    party = Order.seller_id if as_seller else Order.buyer_id
    # Grouped by the order's primary key only (currency depends on it): grouping on more text
    # columns under the database's collation costs more than the aggregate itself. The title is
    # looked up for the page's rows only.
    per_order = (
        select(Order.id.label("order_id"), Order.currency.label("currency"),
               cast(held, BigInteger).label("amount"))
        .join(Milestone, Milestone.order_id == Order.id)
        .where(party == bindparam("party_id", type_=String()), Milestone.funded_amount > 0)
        .group_by(Order.id)
        .having(held != 0)
        .cte("per_order")
        .prefix_with("MATERIALIZED")
    )
    c = per_order.c
    order_id = c.order_id.collate("C") if dialect == "postgresql" else c.order_id  # byte order
    page = (
        select(c.order_id, c.currency, c.amount)
        .where(order_id > bindparam("after", type_=String()))
        .order_by(order_id)
        .limit(bindparam("limit", type_=BigInteger()))
        .subquery("page")
    )
    p = page.c
    title = select(Order.title).where(Order.id == p.order_id).scalar_subquery()
    text_ = String()
    return union_all(
        select(literal(0, Integer()), c.currency, cast(null_(), text_), cast(func.sum(c.amount), BigInteger()),
               cast(func.count(), text_))
        .group_by(c.currency),
        select(literal(1, Integer()), p.currency, p.order_id, p.amount, title),
    )


def escrow_by_order(session: Session, *, seller_id: str | None = None, buyer_id: str | None = None) -> list[EscrowRow]:
    """Every order of the seller (or buyer) with money in escrow, by order id."""
    return escrow_summary(session, seller_id=seller_id, buyer_id=buyer_id, limit=None).page


def buyer_flows(session: Session, buyer_id: str) -> dict[str, dict[str, int]]:
    """Per currency, for the buyer's orders: {'paid': in from the buyer, 'refunded': back to them,
    'escrow': still held}. Summed from postings, grouped in SQL."""
    bucket = case(
        (Posting.account == postings.WORLD_PAYMENTS, "paid"),
        (Posting.account == postings.WORLD_REFUNDS, "refunded"),
        (Posting.account.like("escrow:%"), "escrow"),
        else_="other",
    )
    rows = session.execute(
        select(Posting.currency, bucket, func.sum(Posting.amount))
        .join(Transfer, Transfer.id == Posting.transfer_id)
        .join(Order, Order.id == Transfer.order_id)
        .where(Order.buyer_id == buyer_id)
        .group_by(Posting.currency, bucket)
    ).all()
    result: dict[str, dict[str, int]] = {}
    for currency, name, total in rows:
        result.setdefault(currency, {})[name] = int(total)
    for flows in result.values():
        flows["paid"] = -flows.get("paid", 0)
    return result


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
    still_open = or_(
        Milestone.status.not_in(
            [MilestoneStatus.APPROVED, MilestoneStatus.RESOLVED, MilestoneStatus.CANCELLED]
        ),
        Milestone.held_for_seller_amount > 0,
    )
    return session.execute(
        select(*FORECAST_MILESTONE_COLUMNS)
        .join(Milestone, Milestone.order_id == Order.id)
        .where(party, Order.status.in_(OPEN_ORDER_STATUSES), still_open)
        .order_by(Order.id, Milestone.seq)
    ).all()


def _still_open() -> ColumnElement[bool]:
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
    """Escalation deadlines of the open disputes of these milestones (for the forecast's chain)."""
    from milepost.disputes.models import Dispute

    if not milestone_ids:
        return {}
    rows = session.execute(
        select(Dispute.milestone_id, Dispute.opened_at)
        .where(Dispute.milestone_id.in_(list(milestone_ids)), Dispute.resolved_at.is_(None))
    ).all()
    return {mid: opened for mid, opened in rows}


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
# Forecast in SQL: the dated schedule of open milestones, totalled and paged by the database
# ---------------------------------------------------------------------------------------------

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
CLOSED_STATUSES = (MilestoneStatus.APPROVED, MilestoneStatus.RESOLVED, MilestoneStatus.CANCELLED)
# Certainty ranks (forecast.CERTAINTY_ORDER): held 2, awaiting_review 3, in_progress 4, not_started 5.
# Disputed milestones get EXCLUDED_RANK: they are left out of the lines and the totals.
EXCLUDED_RANK = 99


class _EpochUs(FunctionElement[int]):
    """Microseconds since 1970 (UTC) of a `UTCDateTime` column, as a 64-bit integer: exact (no
    float), cheap to compare and to fetch, and the same number on both databases."""

    inherit_cache = True
    type = BigInteger()


@compiles(_EpochUs, "postgresql")
def _epoch_us_pg(element: _EpochUs, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"


@compiles(_EpochUs)
def _epoch_us_sqlite(element: _EpochUs, compiler: Any, **kw: Any) -> str:
    # SQLite keeps naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (UTCDateTime); no fraction → 0.
    col = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 + CAST(substr({col}, 21, 6) AS INTEGER))"


class _WidthBucket(FunctionElement[int]):
    """PostgreSQL's `width_bucket(value, thresholds)`: how many thresholds are ≤ value (a binary
    search in C). Elsewhere NULL: the caller then buckets the exact values itself."""

    inherit_cache = True
    type = Integer()


@compiles(_WidthBucket, "postgresql")
def _width_bucket_pg(element: _WidthBucket, compiler: Any, **kw: Any) -> str:
    value, thresholds = element.clauses
    return (f"width_bucket({compiler.process(value, **kw)}, "
            f"CAST({compiler.process(thresholds, **kw)} AS BIGINT[]))")


@compiles(_WidthBucket)
def _width_bucket_other(element: _WidthBucket, compiler: Any, **kw: Any) -> str:
    return "CAST(NULL AS INTEGER)"


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
    # (currency, rank, bucket (PostgreSQL) or None, expected_us when not bucketed, net sum, lines)
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
    day_starts_us: Sequence[int],
    limit: int | None,
    after: tuple[int, int, str, str, int, str] | None,
) -> ScheduleResult:
    """The forecast of every open milestone of the seller, computed by the database in one statement.

    The rules are `forecast.milestone_lines` (which tests hold this equal to), written as window
    functions over each order's open milestones in `seq` order (see `_schedule_statement`).

    Returns the net sums per (currency, certainty, local day) — `day_starts_us` are the UTC instants
    the viewer's local days start, PostgreSQL bins each line into them (`width_bucket`); lines
    outside them (and every line on SQLite) come back per exact instant — the first `limit` lines
    after the `after` key (all of them when `limit` is None), and the disputed (excluded) milestones.
    """
    dialect = session.get_bind().dialect.name
    first = after or (-(2**63), -1, "", "", -1, "")
    params = {
        "seller_id": seller_id, "now_us": now_us, "day_starts": list(day_starts_us),
        "n_days": len(day_starts_us), "limit": 2**62 if limit is None else limit + 1,
        **{f"after_{i}": value for i, value in enumerate(first)},
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
    # Sorted here, not in SQL: SQLite allows no ORDER BY inside a UNION's parts (ids are ASCII, so
    # Python's order is the byte order the database used for the page's LIMIT).
    page_rows.sort(key=lambda r: r[:6])
    excluded.sort(key=lambda r: (r[2], r[5]))
    return ScheduleResult(day_totals, page_rows, excluded)


@functools.cache
def _schedule_statement(dialect: str, has_after: bool) -> Any:
    """The statement of `milestone_schedule`, built once per dialect and kind of page (first, or
    after a cursor: the first page skips the cursor's comparison on every line); building it costs
    more than running it, so everything else that varies is a bound parameter.

    The chain — each pending milestone starts when the one before it is expected to be approved —
    is a running maximum: with `d` the due + review days of a pending milestone (0 otherwise), `S`
    their running sum and `F` the fixed expected approval of a delivered / in-progress / disputed
    one, ``cursor_i = S_i + max(now, max_{j ≤ i} (F_j − S_j))``, and a pending milestone is approved
    at its cursor. Amounts are net of `floor(gross × bps / 10000)`, computed without 64-bit overflow.
    """
    from milepost.disputes.models import Dispute

    pg = dialect == "postgresql"

    def bytewise(column: Any) -> Any:
        # ids and currency codes ordered byte by byte (as Python orders str), not by the locale
        return column.collate("C") if pg else column

    m, o = Milestone, Order
    pending, delivered, in_progress, disputed = (MilestoneStatus.PENDING, MilestoneStatus.DELIVERED,
                                                 MilestoneStatus.IN_PROGRESS, MilestoneStatus.DISPUTED)
    now = bindparam("now_us", type_=BigInteger())
    day = literal(DAY_US, BigInteger())
    review = o.review_days * day
    due_us = _EpochUs(m.due_at)
    opened_us = (
        select(func.max(_EpochUs(Dispute.opened_at)))
        .where(Dispute.milestone_id == m.id, Dispute.resolved_at.is_(None))
        .scalar_subquery()
    )
    negotiated = func.coalesce(opened_us, now) + o.dispute_negotiation_days * day
    fixed = case(
        (m.status == delivered, func.coalesce(_EpochUs(m.review_due_at), now + review)),
        (m.status == in_progress, case((due_us > now, due_us), else_=now) + review),
        (m.status == disputed, case((negotiated > now, negotiated), else_=now)),
        else_=None,
    )
    closed = m.status.in_(CLOSED_STATUSES)
    gross = case(
        (closed, m.held_for_seller_amount),
        (m.status == disputed, m.funded_amount - m.released_amount - m.refunded_amount),
        (m.funded_amount > 0,
         m.funded_amount - m.released_amount - m.refunded_amount - m.held_for_seller_amount),
        else_=m.amount,
    )
    rank = case(
        (m.status == disputed, EXCLUDED_RANK), (m.status == delivered, 3), (m.status == in_progress, 4),
        (m.status == pending, 5), else_=2,
    )
    # Only what the chain and the lines need passes through the three window stages (every column
    # is copied at each): whether a line is dated at its order's completion (closed: held money, or
    # release on completion) is one flag, and a closed milestone is told by its rank (2).
    base = (
        select(
            m.order_id.label("order_id"), m.id.label("milestone_id"), m.seq.label("seq"),
            o.currency.label("currency"), rank.label("rank"), gross.label("gross"),
            o.seller_fee_bps.label("bps"),
            or_(closed, o.release == "on_completion").label("at_completion"),
            (o.clearance_days * day).label("clearance"),
            case((m.status == pending, (m.due_days + o.review_days) * day), else_=0).label("d"),
            fixed.label("fixed"),
            and_(m.status == in_progress, m.due_at.is_not(None),
                 now > due_us + o.late_grace_hours * literal(HOUR_US, BigInteger())).label("late"),
            or_(m.status != pending, m.funded_amount > 0).label("funded"),
        )
        .join(o, m.order_id == o.id)
        .where(o.seller_id == bindparam("seller_id"), o.status.in_(OPEN_ORDER_STATUSES), _still_open())
        .subquery("base")
    )
    # Partitions only group (equality); byte-wise ("C") they sort with memcmp and abbreviated keys
    # instead of the locale's strcoll, and the three stages share that one sort.
    b = base.c
    running = (
        select(base, cast(func.sum(b.d).over(partition_by=bytewise(b.order_id), order_by=b.seq, rows=(None, 0)),
                          BigInteger).label("s"))
        .subquery("running")
    )
    r = running.c
    best = func.max(r.fixed - r.s).over(partition_by=bytewise(r.order_id), order_by=r.seq, rows=(None, 0))
    approved_at = case(
        (r.rank == 2, None),  # closed
        (r.fixed.is_not(None), r.fixed),
        else_=r.s + case((best > now, best), else_=now),
    )
    approved = select(running, approved_at.label("approved")).subquery("approved")
    a = approved.c
    completion = func.coalesce(func.max(a.approved).over(partition_by=bytewise(a.order_id)), now)
    expected = case((a.at_completion, completion), else_=a.approved) + a.clearance
    fee = (a.gross // 10_000) * a.bps + ((a.gross % 10_000) * a.bps) // 10_000
    lines = (
        select(
            a.order_id, a.milestone_id, a.seq, a.currency, a.rank, a.gross, fee.label("fee"),
            (a.gross - fee).label("net"), expected.label("expected_us"), a.late, a.funded,
            # the line's local day, found once (a binary search over the day starts): computed in
            # the grouping instead, it would run once per grouping expression that uses it
            _WidthBucket(expected, bindparam("day_starts", type_=ARRAY(BigInteger()))).label("bucket"),
        )
        .cte("lines")
        .prefix_with("MATERIALIZED")
    )
    c = lines.c
    # (not a WHERE of `lines`: that would run before its window functions and drop rows from the chain)
    scheduled = and_(c.rank != EXCLUDED_RANK, c.gross > 0)
    at = case((and_(c.bucket > 0, c.bucket < bindparam("n_days", type_=Integer())), None), else_=c.expected_us)
    key = (c.expected_us, c.rank, bytewise(c.currency), bytewise(c.order_id), c.seq, bytewise(c.milestone_id))
    after = [bindparam(f"after_{i}", type_=t) for i, t in
             enumerate((BigInteger(), Integer(), String(), String(), Integer(), String()))]
    page = (
        select(c).where(scheduled, *([_gt(key, after)] if has_after else []))
        .order_by(*key).limit(bindparam("limit", type_=BigInteger()))
        .subquery("page")
    )
    p = page.c

    def null(type_: Any) -> Any:
        return cast(null_(), type_)

    def title_of(model: Any, id_: Any) -> Any:
        # a primary-key lookup per row of the (short) page, not a join over the whole table
        return select(model.title).where(model.id == id_).scalar_subquery()

    # One statement, so the lines are computed once: three kinds of rows in one shape —
    # 0 day totals, 1 the page, 2 the excluded (disputed) milestones.
    text_, big, int_, bool_ = String(), BigInteger(), Integer(), Boolean()
    return union_all(
        select(literal(0, int_), at, c.rank, c.currency, null(text_), null(int_), null(text_),
               cast(func.sum(c.net), big), cast(func.count(), big), null(big), null(bool_), null(bool_),
               null(text_), null(text_), c.bucket)
        .where(scheduled)
        .group_by(c.currency, c.rank, c.bucket, at),
        select(literal(1, int_), p.expected_us, p.rank, p.currency, p.order_id, p.seq, p.milestone_id,
               p.net, p.gross, p.fee, p.late, p.funded, title_of(o, p.order_id), title_of(m, p.milestone_id),
               null(int_)),
        select(literal(2, int_), null(big), c.rank, c.currency, c.order_id, c.seq, c.milestone_id, null(big),
               c.gross, null(big), null(bool_), null(bool_), title_of(o, c.order_id),
               title_of(m, c.milestone_id), null(int_))
        .where(c.rank == EXCLUDED_RANK),
    )
