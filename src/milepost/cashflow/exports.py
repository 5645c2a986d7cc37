"""Ledger exports that tie out line for line: CSV, hledger journal, beancount (SPEC §3).

Every export is a generator of text chunks that streams the postings from the database in batches
(`repository.stream_postings`): memory stays flat whatever the size of the ledger. One ledger
transfer becomes one journal transaction (CSV: one row per posting), in booking order, dated by the
UTC date of the transfer, carrying the transfer id, kind, idempotency key, order, milestone, lot and
payout as tags/metadata.

Who is exported (the *scope*): everything (operator, CLI without --seller) or one user's transfers —
those of the orders they buy or sell in, and their payouts. Transfers are always exported whole
(the platform's and the outside world's legs too), so each transaction balances by itself and the
user's accounts come out exactly as `GET /v1/balances` reports them.

Periods: `from` and `to` are calendar dates in UTC and both inclusive (`to` covers that whole day);
internally the range is [from 00:00, to + 1 day 00:00). With a `from` date the export starts with one
**opening balances** transaction per currency, dated `from`, holding every account's balance from all
the scope's transfers before `from`. Because every transfer sums to zero, those balances sum to zero
per currency too: the opening transaction needs no equity plug, and balances computed from the file
equal the ledger's balances at the end of the period. (CSV marks those rows with kind `opening` and
no transfer id.)

Account names: hledger and CSV use the ledger's names unchanged (`escrow:order:<id>`,
`seller:<id>:clearing`, `platform:fees`, `world:payments`…). Beancount requires capitalised
components under one of its five roots, so `beancount_account()` maps them: money the ledger holds
(escrow, seller, platform) goes under `Assets:`, the outside world under `Equity:`, each component
capitalised with `_` turned into `-` (`escrow:order:ord_01AB` → `Assets:Escrow:Order:Ord-01AB`).
Signs are the ledger's own (positive = held), never flipped.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from milepost.cashflow import repository as repo
from milepost.cashflow.repository import PostingRow
from milepost.errors import InvalidInput
from milepost.money import currency_digits, to_decimal_string


class ExportFormat(StrEnum):
    BEANCOUNT = "beancount"
    HLEDGER = "hledger"
    CSV = "csv"


MEDIA_TYPES = {
    ExportFormat.BEANCOUNT: "text/plain; charset=utf-8",
    ExportFormat.HLEDGER: "text/plain; charset=utf-8",
    ExportFormat.CSV: "text/csv; charset=utf-8",
}
FILE_EXTENSIONS = {ExportFormat.BEANCOUNT: "beancount", ExportFormat.HLEDGER: "journal", ExportFormat.CSV: "csv"}


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC; either side open when None."""

    start: datetime | None = None
    end: datetime | None = None


def _parse_date(value: str | date | None, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) > 10:
        raise InvalidInput(f"{field} must be a date like 2026-01-31",
                           errors=[{"field": field, "message": "must be a date YYYY-MM-DD"}])
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a date like 2026-01-31",
                           errors=[{"field": field, "message": "must be a date YYYY-MM-DD"}]) from None


def parse_period(from_: str | date | None, to: str | date | None) -> Period:
    """Both dates inclusive, in UTC (see the module docstring)."""
    first, last = _parse_date(from_, "from"), _parse_date(to, "to")
    if first and last and last < first:
        raise InvalidInput("'to' is before 'from'", errors=[{"field": "to", "message": "must not be before 'from'"}])
    start = datetime.combine(first, time(0), tzinfo=UTC) if first else None
    end = datetime.combine(last, time(0), tzinfo=UTC) + timedelta(days=1) if last else None
    return Period(start, end)


def parse_format(value: str) -> ExportFormat:
    try:
        return ExportFormat(value)
    except ValueError:
        raise InvalidInput("format must be beancount, hledger or csv",
                           errors=[{"field": "format", "message": "must be beancount, hledger or csv"}]) from None


# ---------------------------------------------------------------------------------------------
# Names and text
# ---------------------------------------------------------------------------------------------

_NOT_COMPONENT = re.compile(r"[^A-Za-z0-9-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def beancount_account(account: str) -> str:
    parts = account.split(":")
    root = "Equity" if parts[0] == "world" else "Assets"
    components = []
    for part in parts:
        clean = _NOT_COMPONENT.sub("-", part.replace("_", "-")) or "X"
        components.append(clean[0].upper() + clean[1:] if clean[0].isalpha() else "X" + clean)
    return ":".join([root, *components])


def _text(value: str, *, limit: int = 200) -> str:
    return _CONTROL.sub(" ", value)[:limit].strip()


def _hledger_text(value: str) -> str:
    # ';' would start a comment and cut the description short.
    return _text(value).replace(";", ",")


def _beancount_string(value: str) -> str:
    return '"' + _text(value).replace("\\", "/").replace('"', "'") + '"'


def _amount(amount: int, currency: str) -> str:
    return f"{to_decimal_string(amount, currency)} {currency}"


def _description(row: PostingRow) -> str:
    return row.memo or row.kind


# ---------------------------------------------------------------------------------------------
# Streaming core
# ---------------------------------------------------------------------------------------------


def _transfers(rows: Iterator[PostingRow]) -> Iterator[list[PostingRow]]:
    """Group the posting stream by transfer: one small list in memory at a time."""
    for _, group in itertools.groupby(rows, key=lambda r: r.transfer_id):
        yield list(group)


def _openings(
    session: Session, scope: repo.ColumnElement[bool], period: Period
) -> Iterator[tuple[str, list[tuple[str, int]] | None]]:
    """Yields (currency, None) when a currency's opening block starts, then (currency, [(account,
    amount)]) per account — streamed, so a million accounts never sit in memory at once."""
    if period.start is None:
        return
    current = None
    for account, currency, amount in repo.stream_opening_balances(session, scope, before=period.start):
        if currency != current:
            current = currency
            yield currency, None
        yield currency, [(account, amount)]


def export_hledger(
    session: Session, *, user_id: str | None = None, period: Period = Period(),
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """An hledger journal that passes `hledger check --strict` (accounts and commodities declared)."""
    scope = repo.transfer_scope(user_id)
    yield "; Milepost ledger export (hledger journal). Amounts use the ledger's signs: positive = held.\n"
    if period.start or period.end:
        yield f"; period: {_period_text(period)}\n"
    yield "decimal-mark .\n\n"
    accounts_block = []
    for account in repo.stream_accounts(session, scope, end=period.end):
        accounts_block.append(f"account {account}\n")
        if len(accounts_block) >= 1000:
            yield "".join(accounts_block)
            accounts_block.clear()
    yield "".join(accounts_block)
    for currency in repo.currencies_used(session, scope, end=period.end):
        # hledger wants a decimal mark in every commodity directive, even for JPY ("1000.").
        yield f"commodity 1000.{'0' * currency_digits(currency)} {currency}\n"
    yield "\n"
    if period.start is not None:
        day = period.start.date().isoformat()
        for currency, items in _openings(session, scope, period):
            if items is None:
                yield f"\n{day} * Opening balances before {day} ({currency})  ; kind:opening\n"
                continue
            for account, amount in items:
                yield f"    {account}  {_amount(amount, currency)}\n"
        yield "\n"
    for transfer in _transfers(repo.stream_postings(session, scope, start=period.start, end=period.end)):
        head = transfer[0]
        tags = [f"transfer:{head.transfer_id}", f"kind:{head.kind}"]
        for name in ("order_id", "milestone_id", "lot_id", "payout_id"):
            value = getattr(head, name)
            if value:
                tags.append(f"{name.removesuffix('_id')}:{value}")
        lines = [f"{head.created_at.date().isoformat()} * {_hledger_text(_description(head))}  ; {', '.join(tags)}\n"]
        lines.extend(f"    {p.account}  {_amount(p.amount, p.currency)}\n" for p in transfer)
        yield "".join(lines) + "\n"
        if progress:
            progress(len(transfer))


def export_beancount(
    session: Session, *, user_id: str | None = None, period: Period = Period(),
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """A beancount file that passes `bean-check`: commodities and accounts opened on the first day."""
    scope = repo.transfer_scope(user_id)
    yield "; Milepost ledger export (beancount). Amounts use the ledger's signs: positive = held.\n"
    yield '; Account names map the ledger\'s: escrow/seller/platform under Assets:, world under Equity:.\n'
    yield 'option "title" "Milepost ledger"\n\n'
    if period.start is not None:
        first_day = period.start.date()
    else:
        first = repo.first_transfer_at(session, scope, end=period.end)
        first_day = first.date() if first else None
    if first_day is None:
        return
    block = []
    for account in repo.stream_accounts(session, scope, end=period.end):
        block.append(f"{first_day.isoformat()} open {beancount_account(account)}\n")
        if len(block) >= 1000:
            yield "".join(block)
            block.clear()
    yield "".join(block)
    for currency in repo.currencies_used(session, scope, end=period.end):
        yield f"{first_day.isoformat()} commodity {currency}\n"
    yield "\n"
    if period.start is not None:
        day = first_day.isoformat()
        for currency, items in _openings(session, scope, period):
            if items is None:
                yield f'\n{day} * "Milepost" "Opening balances before {day} ({currency})"\n  kind: "opening"\n'
                continue
            for account, amount in items:
                yield f"  {beancount_account(account)}  {_amount(amount, currency)}\n"
        yield "\n"
    for transfer in _transfers(repo.stream_postings(session, scope, start=period.start, end=period.end)):
        head = transfer[0]
        lines = [
            f'{head.created_at.date().isoformat()} * "Milepost" {_beancount_string(_description(head))}\n',
            f'  transfer: "{head.transfer_id}"\n',
            f'  kind: "{head.kind}"\n',
            f"  key: {_beancount_string(head.idempotency_key)}\n",
        ]
        for name in ("order_id", "milestone_id", "lot_id", "payout_id"):
            value = getattr(head, name)
            if value:
                lines.append(f'  {name.replace("_id", "")}: "{value}"\n')
        lines.extend(f"  {beancount_account(p.account)}  {_amount(p.amount, p.currency)}\n" for p in transfer)
        yield "".join(lines) + "\n"
        if progress:
            progress(len(transfer))


CSV_COLUMNS = [
    "transfer_id", "created_at", "date", "kind", "idempotency_key", "order_id", "milestone_id", "lot_id",
    "payout_id", "memo", "account", "currency", "amount_minor", "amount",
]


def export_csv(
    session: Session, *, user_id: str | None = None, period: Period = Period(),
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """One row per posting; `amount_minor` is the integer of minor units, `amount` the decimal."""
    scope = repo.transfer_scope(user_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    if period.start is not None:
        day = period.start.date().isoformat()
        for currency, items in _openings(session, scope, period):
            for account, amount in items or []:
                writer.writerow(["", period.start.isoformat(), day, "opening", "", "", "", "", "",
                                 f"opening balance before {day}", account, currency, amount,
                                 to_decimal_string(amount, currency)])
            if buffer.tell() > 64_000:
                yield flush()
    count = 0
    for row in repo.stream_postings(session, scope, start=period.start, end=period.end):
        writer.writerow([
            row.transfer_id, row.created_at.isoformat(), row.created_at.date().isoformat(), row.kind,
            row.idempotency_key, row.order_id or "", row.milestone_id or "", row.lot_id or "",
            row.payout_id or "", _text(row.memo, limit=300), row.account, row.currency, row.amount,
            to_decimal_string(row.amount, row.currency),
        ])
        count += 1
        if count % 1000 == 0:
            if progress:
                progress(1000)
            yield flush()
    if progress and count % 1000:
        progress(count % 1000)
    yield flush()


EXPORTERS = {
    ExportFormat.BEANCOUNT: export_beancount,
    ExportFormat.HLEDGER: export_hledger,
    ExportFormat.CSV: export_csv,
}


def export(
    session: Session, fmt: ExportFormat, *, user_id: str | None = None, period: Period = Period(),
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """Stream an export in `fmt`; `progress(n)` is told about every n postings written."""
    return EXPORTERS[fmt](session, user_id=user_id, period=period, progress=progress)


def count_postings(session: Session, *, user_id: str | None = None, period: Period = Period()) -> int:
    """How many postings an export will hold (for progress bars)."""
    return repo.count_postings(session, repo.transfer_scope(user_id), start=period.start, end=period.end)


def _period_text(period: Period) -> str:
    start = period.start.date().isoformat() if period.start else "the beginning"
    end = (period.end - timedelta(days=1)).date().isoformat() if period.end else "now"
    return f"{start} to {end} (UTC, inclusive)"
