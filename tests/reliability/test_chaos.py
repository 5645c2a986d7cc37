"""The short kill -9 run (see chaos.py; `make chaos` runs the long one): PostgreSQL and SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.reliability.chaos import run_chaos
from tests.reliability.test_many_processes import FIGURES


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_kill_9_under_load_loses_no_acknowledged_write(make_stack: Any, backend: str) -> None:
    stack = make_stack(backend, dev_clock=False)
    figures = run_chaos(stack, kills=4, clients=3, min_seconds=8)
    assert figures["kills"] >= 4 and figures["acknowledged_total"] > 0, figures
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"chaos-short-{backend}.json").write_text(json.dumps(figures, indent=2))
