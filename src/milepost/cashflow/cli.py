"""CLI commands of the cash-flow work: `milepost forecast --seller EMAIL`, `milepost export …`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

CERTAINTY_STYLE = {
    "available": "bold green", "clearing": "green", "held": "cyan", "awaiting_review": "yellow",
    "in_progress": "blue", "not_started": "dim",
}


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]{message}[/]")
    return typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the cash-flow commands to the main CLI."""

    @app.command()
    def forecast(
        seller: Annotated[str, typer.Option("--seller", help="The seller's e-mail address")],
        tz: Annotated[str | None, typer.Option(help="IANA time zone for the weekly totals "
                                               "(default: the seller's)")] = None,
        limit: Annotated[int, typer.Option(help="Lines to show (the totals always cover every line)")] = 100,
        after: Annotated[str | None, typer.Option(help="Show the lines after this cursor (printed "
                                                  "when more lines follow)")] = None,
    ) -> None:
        """Print a seller's dated cash-flow forecast (one page of lines) and its weekly totals."""
        from milepost.accounts import service as accounts
        from milepost.cashflow import forecast as fc
        from milepost.cashflow import service
        from milepost.config import Settings
        from milepost.errors import MilepostError
        from milepost.money import format_money
        from milepost.runtime import Runtime

        rt = Runtime.from_settings(Settings())
        try:
            with rt.reading() as ctx:
                user = accounts.get_user_by_email(ctx.session, accounts.normalize_email(seller))
                result = fc.seller_forecast(ctx.session, user.id, now=ctx.now, tz=tz or user.timezone,
                                            limit=limit, after=after)
                balances = service.balances_for(ctx.session, user.id, limit=0)  # totals only
        except MilepostError as exc:
            raise _fail(str(exc)) from None
        finally:
            rt.db.dispose()

        bal = Table(title=f"Balances of {user.email}")
        for column in ("currency", "in escrow", "clearing", "available", "paid out"):
            bal.add_column(column, justify="right" if column != "currency" else "left")
        for b in balances:
            bal.add_row(b.currency, *(format_money(v, b.currency) for v in
                                      (b.in_escrow, b.clearing, b.available, b.paid_out)))
        console.print(bal)

        table = Table(title=f"Forecast — as of {result.as_of:%Y-%m-%d %H:%M} UTC")
        table.add_column("expected (UTC)")
        table.add_column("certainty")
        table.add_column("order")
        table.add_column("milestone")
        table.add_column("net", justify="right")
        table.add_column("fee", justify="right")
        for line in result.lines:
            style = CERTAINTY_STYLE.get(line.certainty, "")
            certainty = f"[{style}]{line.certainty}[/]" + (" [red]LATE[/]" if line.late else "")
            if line.funded is False:
                certainty += " [dim](unfunded)[/]"
            table.add_row(
                f"{line.expected_at:%Y-%m-%d}", certainty, line.order_title or "—",
                f"#{line.seq} {line.milestone_title}" if line.seq else "—",
                format_money(line.amount, line.currency), format_money(line.fee_amount, line.currency),
            )
        console.print(table)
        if result.next_cursor:
            console.print(f"[dim]{len(result.lines)} of {result.line_count} lines; the next ones: "
                          f"--after {result.next_cursor}[/]")
        for e in result.excluded:
            console.print(f"[yellow]in dispute, not forecast:[/] {e.order_title} #{e.seq} "
                          f"{format_money(e.gross_amount, e.currency)}")

        weeks = Table(title=f"By ISO week ({result.tz})")
        weeks.add_column("week")
        weeks.add_column("starts")
        weeks.add_column("total", justify="right")
        weeks.add_column("of which certain (available/clearing/held)", justify="right")
        for w in result.weekly:
            certain = sum(w.by_certainty.get(k, 0) for k in ("available", "clearing", "held"))
            weeks.add_row(w.period, w.starts_on.isoformat(), format_money(w.amount, w.currency),
                          format_money(certain, w.currency))
        console.print(weeks)

    @app.command()
    def export(
        format: Annotated[str, typer.Option("--format", help="beancount | hledger | csv")] = "hledger",
        from_: Annotated[str | None, typer.Option("--from", help="First day (UTC, inclusive), YYYY-MM-DD")] = None,
        to: Annotated[str | None, typer.Option("--to", help="Last day (UTC, inclusive), YYYY-MM-DD")] = None,
        seller: Annotated[str | None, typer.Option("--seller", help="Only this user's orders and payouts "
                                                   "(default: the whole ledger)")] = None,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")] = None,
    ) -> None:
        """Export the ledger as beancount, an hledger journal or CSV, streamed with a progress bar."""
        from milepost.accounts import service as accounts
        from milepost.cashflow import exports
        from milepost.config import Settings
        from milepost.errors import MilepostError
        from milepost.runtime import Runtime

        rt = Runtime.from_settings(Settings())
        try:
            fmt = exports.parse_format(format)
            period = exports.parse_period(from_, to)
            with rt.reading() as ctx:
                user_id = None
                if seller:
                    user_id = accounts.get_user_by_email(ctx.session, accounts.normalize_email(seller)).id
                total = exports.count_postings(ctx.session, user_id=user_id, period=period)
                out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
                try:
                    # The bar goes to stderr so `milepost export > file` stays a clean journal.
                    with Progress(
                        TextColumn("[bold]exporting[/] {task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(), console=err_console,
                        transient=output is None,
                    ) as progress:
                        task = progress.add_task(f"{fmt} postings", total=total)
                        for chunk in exports.export(
                            ctx.session, fmt, user_id=user_id, period=period,
                            progress=lambda n: progress.advance(task, n),
                        ):
                            out.write(chunk)
                finally:
                    if output:
                        out.close()
        except MilepostError as exc:
            raise _fail(str(exc)) from None
        finally:
            rt.db.dispose()
        if output:
            err_console.print(f"[green]wrote {total} postings to {output}[/]")
