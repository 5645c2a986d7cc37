"""Run the benchmark suite: `python -m bench.run [section …]` (`make bench`; BENCH_QUICK=1 for small sizes).

Sections: approvals, scale, forecast, journals, http (default: all). Writes bench/results/latest.json
(nested objects: the dotted keys of issue 7, each a number, plus `meta`) and the results table in
bench/README.md between its markers. A failing section is recorded in meta.errors and the others
still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import approvals, forecast, http, reports
from bench.common import QUICK, Workspace, log, sizes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

SECTIONS: dict[str, Callable[[Workspace, Any], dict[str, float]]] = {
    "approvals": approvals.run,
    "scale": approvals.scale,
    "forecast": forecast.forecast,
    "journals": reports.journals,
    "http": http.run,
}

TARGETS = {
    "approvals.sqlite.ratio_vs_raw": (">=", 0.5),
    "approvals.postgres.ratio_vs_raw": (">=", 0.5),
    "approvals.scale_ratio_1m_vs_1k": ("<=", 1.2),
    "http.p99_ms": ("<", 100.0),
    "reports.forecast_10k_ms": ("<", 50.0),
    "reports.vs_hledger_ratio": (">=", 100.0),
    "reports.vs_beancount_ratio": (">=", 100.0),
}


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(flat):
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = flat[key]
    return out


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def table(flat: dict[str, Any]) -> str:
    rows = ["| key | value | target |", "|---|---:|---|"]
    for key in sorted(flat):
        value = flat[key]
        target = TARGETS.get(key)
        mark = ""
        if target:
            op, bound = target
            ok = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
            mark = f"{op} {bound:g} {'✅' if ok else '❌'}"
        rows.append(f"| `{key}` | {value:,.3f} | {mark} |".replace(".000 |", " |"))
    return "\n".join(rows)


def write(flat: dict[str, Any], meta: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    data = nest(flat)
    data["meta"] = meta
    (RESULTS / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    if README.exists():
        text = README.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            block = (
                f"{START}\n_Run {meta['date']} — {'BENCH_QUICK=1' if meta['quick'] else 'full sizes'}, "
                f"{meta['machine']}, load average at start {meta['load_at_start']}"
                + (
                    f"; sections other than {', '.join(meta['sections'])} are from the run of "
                    f"{meta['other_sections_from']}"
                    if meta.get("other_sections_from")
                    else ""
                )
                + "._\n\n"
                f"{table(flat)}\n{END}"
            )
            README.write_text(head + block + tail)


def main(argv: list[str]) -> int:
    wanted = argv or list(SECTIONS)
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        print(f"unknown sections {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    sz = sizes()
    previous: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": QUICK,
        "tiny": bool(os.environ.get("BENCH_TINY")),
        "sizes": asdict(sz),
        "machine": machine(),
        "load_at_start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "sections": wanted,
        "seconds": {},
        "load_after": {},  # load average (1, 5, 15 min) when each section ended: a shared machine
        "errors": {},
    }
    if len(wanted) < len(SECTIONS) and (RESULTS / "latest.json").exists() and not meta["tiny"]:
        # Running some sections keeps the others' last figures.
        old = json.loads((RESULTS / "latest.json").read_text())
        old_meta = old.pop("meta", {})
        previous = _flatten(old)
        meta["other_sections_from"] = old_meta.get("other_sections_from") or old_meta.get(
            "date", "?"
        )
    log(
        f"{'TINY' if meta['tiny'] else 'QUICK' if QUICK else 'full'} run of {wanted} on {meta['machine']}"
    )
    ws = Workspace()
    try:
        for name in wanted:
            started = time.perf_counter()
            try:
                flat.update(SECTIONS[name](ws, sz))
            except Exception as exc:  # one broken section must not lose the others' figures
                traceback.print_exc()
                meta["errors"][name] = f"{type(exc).__name__}: {exc}"[:500]
            meta["seconds"][name] = round(time.perf_counter() - started, 1)
            meta["load_after"][name] = " ".join(f"{x:.1f}" for x in os.getloadavg())
            log(
                f"{name} done in {meta['seconds'][name]} s (load average {meta['load_after'][name]})"
            )
    finally:
        ws.close()
    merged = {**previous, **flat}
    if not meta["tiny"]:
        write(merged, meta)
    else:
        out = Path(os.environ.get("BENCH_OUT", HERE / "results" / "tiny.json"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**nest(merged), "meta": meta}, indent=2) + "\n")
    print(table(merged))
    return 1 if meta["errors"] else 0


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
