"""The `milepost` command: serve, worker, db upgrade, user create, demo, audit, forecast, export."""

from __future__ import annotations

import inspect
import json
import logging
import signal
import sys
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from milepost.config import Settings
from milepost.runtime import Runtime

app = typer.Typer(help="Milepost: milestone contracts with escrow.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
console = Console()


def _runtime() -> Runtime:
    return Runtime.from_settings(Settings())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema with the Alembic migrations."""
    from milepost import migrate

    rt = _runtime()
    migrate.upgrade(rt.db.engine)
    console.print(f"[green]database at head[/] ({migrate.current_revision(rt.db.engine)}) — {rt.db.dialect}")


@user_app.command("create")
def user_create(
    email: str,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
    operator: Annotated[bool, typer.Option("--operator", help="May resolve disputes and read the audit")] = False,
) -> None:
    """Create a user (an operator with --operator)."""
    from milepost.accounts import service as accounts
    from milepost.errors import MilepostError

    rt = _runtime()
    try:
        with rt.unit_of_work() as ctx:
            user = accounts.create_user(ctx, email=email, password=password, name=name or email.split("@")[0],
                                        is_operator=operator)
    except MilepostError as exc:
        console.print(f"[red]{exc}[/]")
        for e in getattr(exc, "errors", []):
            console.print(f"  {e['field']}: {e['message']}")
        raise typer.Exit(1) from None
    console.print(f"created {'operator ' if operator else ''}{user.email} ({user.id})")


@app.command()
def audit(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Re-derive every balance from the postings and check the ledger invariants; exit 1 on any violation."""
    from milepost.ledger.audit import run_audit

    rt = _runtime()
    with rt.reading() as ctx:
        report = run_audit(ctx.session)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        table = Table(title=f"Ledger audit — {report.transfers} transfers, {report.postings} postings")
        table.add_column("check")
        table.add_column("result")
        table.add_column("what it means")
        for c in report.checks:
            table.add_row(c.name, "[green]ok[/]" if c.ok else f"[red]{len(c.violations)} violation(s)[/]",
                          c.description)
        console.print(table)
        for c in report.checks:
            for v in c.violations[:50]:
                console.print(f"[red]✗ {c.name}:[/] {v}")
        console.print("[green]every invariant holds[/]" if report.ok else "[red]the ledger is inconsistent[/]")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Fire what is due now and exit")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds")] = 1.0,
) -> None:
    """Fire due timers (auto-approve, clearance, lateness, disputes) and deliver webhooks."""
    from milepost.timers.worker import run_due, run_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    rt = _runtime()
    if once:
        result = run_due(rt)
        console.print(f"fired {result.fired} timer(s), {result.failed} failed")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"worker running every {interval}s on {rt.db.dialect}; Ctrl-C stops it")
    run_forever(rt, stop, interval=interval)


@app.command()
def demo(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when users already exist")] = False,
) -> None:
    """Load realistic demo data: the 12-page website, the 8 illustrations, and orders in every state."""
    from milepost.demo import load_demo

    rt = _runtime()
    summary = load_demo(rt, if_empty=if_empty, console=console)
    if summary is None:
        console.print("demo data already present; nothing loaded")


WORKER_HEALTHCHECK_SECONDS = 60


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each also runs the timer worker)")] = 1,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run the timer worker in-process")] = False,
) -> None:
    """Serve the API (/v1, docs at /docs) and the web app, with the timer worker in-process."""
    import os

    import uvicorn

    os.environ["MILEPOST_SERVE_WORKER"] = "0" if no_worker else "1"
    console.print(f"Milepost on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    options: dict[str, Any] = {}
    if workers > 1 and "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        # uvicorn's supervisor SIGKILLs a worker that does not answer its ping within 5 s. A new
        # worker answers only after re-importing this CLI (≈ 1 s of CPU), and N workers start at
        # once: on a loaded 2-core box that took > 5 s, so workers were killed mid-start (or
        # mid-request) and restarted over and over, each restart another few seconds of CPU.
        options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    uvicorn.run("milepost.asgi:app", host=host, port=port, workers=workers, log_level="info",
                proxy_headers=True, **options)


from milepost.cashflow.cli import register as _register_cashflow  # noqa: E402

_register_cashflow(app)


def main() -> None:  # pragma: no cover
    sys.exit(app())
