"""CLI commands of the cash-flow work: `milepost forecast`, `milepost export` (filled in there)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the cash-flow commands to the main CLI."""
