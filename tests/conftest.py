"""Shared fixtures: a migrated database per test on SQLite and on a throwaway PostgreSQL.

Under CI=true PostgreSQL must be there; elsewhere its tests skip with a message saying how to get it.
Databases are built by the Alembic migrations once per session and copied per test (a file copy on
SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL), so every test starts clean and fast.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from milepost import migrate
from milepost.clock import FixedClock
from milepost.config import Settings
from milepost.db import make_engine
from milepost.devtools.postgres import PostgresCluster, find_pg_bin
from milepost.runtime import Runtime

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster | None]:
    if os.environ.get("MILEPOST_TEST_NO_PG") and not IN_CI:
        yield None
        return
    if find_pg_bin() is None:
        if IN_CI:
            pytest.fail("PostgreSQL server binaries are required under CI (apt-get install postgresql)")
        yield None
        return
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PostgresCluster | None) -> str | None:
    if pg_cluster is None:
        return None
    url = pg_cluster.create_database("milepost_template")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return "milepost_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "milepost.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file we copy
    return path


def _skip_without_pg(cluster: PostgresCluster | None) -> None:
    if cluster is None:
        pytest.skip("PostgreSQL not available: apt-get install postgresql (server binaries), "
                    "or run under CI=true where it is required")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    if backend == "sqlite":
        target = tmp_path / "milepost.sqlite3"
        shutil.copyfile(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    cluster: PostgresCluster | None = request.getfixturevalue("pg_cluster")
    _skip_without_pg(cluster)
    assert cluster is not None
    template = request.getfixturevalue("pg_template")
    name = f"t_{os.getpid()}_{next(_counter)}"
    url = cluster.create_database(name, template=template)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url if not database_url.startswith("sqlite") else None,
        _env_file=None,  # type: ignore[call-arg]
    ) if not database_url.startswith("sqlite") else Settings(
        data_dir=Path(database_url.removeprefix("sqlite:///")).parent, _env_file=None  # type: ignore[call-arg]
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def runtime(settings: Settings, clock: FixedClock) -> Iterator[Runtime]:
    rt = Runtime.from_settings(settings, clock=clock, pool_size=20)
    yield rt
    rt.db.dispose()
