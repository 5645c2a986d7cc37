"""Fixtures for the black-box reliability runs; long runs are deselected unless asked for with -m.

`make test` runs the short versions. `make fuzz` / `make chaos` select the long ones with
`-m long` (plus `fuzz` or `chaos`); without a -m expression they are deselected, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from milepost.devtools.postgres import PostgresCluster
from tests.reliability.harness import IN_CI, Stack


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.option.markexpr:
        return
    long_items = [i for i in items if i.get_closest_marker("long") is not None]
    if long_items:
        config.hook.pytest_deselected(items=long_items)
        items[:] = [i for i in items if i.get_closest_marker("long") is None]


def need_pg(cluster: PostgresCluster | None) -> PostgresCluster:
    if cluster is None:
        if IN_CI:
            pytest.fail("PostgreSQL server binaries are required under CI")
        pytest.skip("PostgreSQL not available: apt-get install postgresql (server binaries)")
    return cluster


@pytest.fixture
def make_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """make_stack(backend, **kw) → a Stack closed (processes killed by pid) at the end of the test."""
    stacks: list[Stack] = []

    def make(backend: str, **kw: object) -> Stack:
        cluster = need_pg(request.getfixturevalue("pg_cluster")) if backend == "postgres" else None
        stack = Stack(tmp_path / f"{backend}-{len(stacks)}", backend, cluster, **kw)  # type: ignore[arg-type]
        stacks.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            stack.close()
