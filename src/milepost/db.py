"""Database plumbing: the declarative base, column types, engines and the one-transaction scope.

Entry points (an HTTP request, a CLI command, one timer firing) own the transaction through
`transaction()`; services only flush. On SQLite every write transaction starts with BEGIN IMMEDIATE,
so writers serialise before reading what they will change (SQLite's form of lock-then-re-read); on
PostgreSQL the services lock rows with SELECT … FOR UPDATE.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event, orm
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from milepost.clock import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """An opaque, time-ordered id (ULID layout): `ord_01JD…`. Sorting by id sorts by creation."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_CROCKFORD[rem])
    return f"{prefix}_{''.join(reversed(chars))}"


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own is deferred).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    engine = create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    # A multi-row INSERT (postings, events, timers) goes out as one INSERT … VALUES (…), (…): one
    # statement. psycopg's own executemany runs a pipeline per call — enter, send each row, sync,
    # exit — whose Python cost was a quarter of an approval's on PostgreSQL (bench/README.md).
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


class Session(orm.Session):
    """The session of every unit of work: the ORM's, plus Core inserts queued until the next flush.

    Rows that nothing in the command reads back (events, timers) are queued with `insert_later`
    and go out as one statement per table — a multi-row executemany — whenever the session
    flushes: before a query (autoflush), on an explicit flush, before a savepoint, and at commit.
    They follow the ORM's own changes, so a queued row may reference an object the ORM still held
    as pending. An approval queues three events and two timers: two statements instead of five,
    and no ORM bookkeeping for them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued: dict[Insert, list[dict[str, Any]]] = {}

    def flush(self, objects: Any = None) -> None:
        super().flush(objects)
        if self._queued:
            queued, self._queued = self._queued, {}
            conn = self.connection()
            for statement, rows in queued.items():
                conn.execute(statement, rows)


@event.listens_for(Session, "before_commit")
def _send_queued_before_commit(session: Session) -> None:
    if session._queued:
        session.flush()


@event.listens_for(Session, "after_soft_rollback")
def _drop_queued_on_rollback(session: Session, _previous: Any) -> None:
    # A rolled-back savepoint only drops rows queued after it: beginning one flushed the queue.
    session._queued.clear()


def insert_later(session: orm.Session, statement: Insert, row: dict[str, Any]) -> None:
    """Queue one row of a prebuilt INSERT; it is sent with the session's next flush (see `Session`)."""
    if isinstance(session, Session):
        session._queued.setdefault(statement, []).append(row)
    else:  # a plain ORM session (none in the app): no queue, send it now
        insert_now(session, statement, row)


def insert_now(session: orm.Session, statement: Insert, params: Any) -> CursorResult[Any]:
    """Run a prebuilt Core INSERT now, on the session's connection, without the ORM's unit of work.

    Only objects the session holds as new are flushed first — the row may reference one of them;
    changes to loaded objects (and queued rows) wait for the next flush as usual.
    """
    if session.new:
        session.flush()
    return session.connection().execute(statement, params)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class Database:
    """Engines and session factories for one database: writes, and reads that take no write lock."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        self._write = sessionmaker(self.engine, class_=Session, expire_on_commit=False, autoflush=True)
        read_engine = self.engine.execution_options(sqlite_begin="DEFERRED")
        self._read = sessionmaker(read_engine, class_=Session, expire_on_commit=False, autoflush=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block succeeds, rolls back on any exception."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work (on SQLite it takes no write lock).

        Closing returns the connection with a rollback but leaves loaded objects readable.
        """
        with self._read() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
