"""The benchmarks run end to end at tiny sizes (no timing is asserted: benchmarks never assert speed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from milepost.devtools.postgres import find_pg_bin

ROOT = Path(__file__).resolve().parents[2]


def test_approvals_capture_and_replay_on_sqlite_keep_the_ledger_sound(tmp_path: Path) -> None:
    from bench.common import Workspace

    from bench import approvals
    from milepost.ledger.audit import run_audit

    ws = Workspace()
    try:
        base, tpl = approvals.build_base(ws, "sqlite", targets=5, filler=5)
        result = approvals.single(ws, "sqlite", base, tpl, 5)
        assert result["statements_per_approval"] > 5
        assert result["ratio_vs_raw"] > 0
        rt = ws.runtime(base)
        with rt.reading() as ctx:
            report = run_audit(ctx.session)
        rt.db.dispose()
        assert all(c.ok for c in report.checks), [c.name for c in report.checks if not c.ok]
    finally:
        ws.close()


@pytest.mark.skipif(
    find_pg_bin() is None or shutil.which("hledger") is None,
    reason="needs PostgreSQL server binaries and hledger (make system-deps)",
)
def test_report_benchmarks_write_every_key(tmp_path: Path) -> None:
    out = tmp_path / "tiny.json"
    env = {**os.environ, "BENCH_TINY": "1", "BENCH_OUT": str(out)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "forecast", "journals"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert isinstance(data["reports"]["forecast_10k_ms"], float)
    assert data["reports"]["balances_identical"] == 1
    assert data["reports"]["vs_hledger_ratio"] > 0
    assert data["memory"]["export_1m_peak_mb"] > 0
