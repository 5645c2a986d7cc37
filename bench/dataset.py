"""Benchmark data: one real order made by the services, then cloned in bulk inside the database.

The template order goes through propose → accept → fund (upfront) → deliver milestone 1, so every
row it owns (order, plan version, milestones, delivery, fund transfers and postings, events,
timers) is exactly what production writes. Clones are made server-side with
`INSERT … SELECT … FROM <template rows> × generate_series` — the fast raw bulk load the
scale benchmark needs (a million orders in minutes, no Python per row). Every id in a clone is
rewritten (string ids by textual replacement in every text and JSON column, integer ids by a fixed
offset), so clones satisfy every unique key and every ledger invariant, like the template.

Clone i's ids are predictable (`order_id(i)`, `milestone_id(i, 1)`), so benchmarks address them
without querying. Users come in `USER_PAIRS` buyer/seller pairs; clone i belongs to pair i % USER_PAIRS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.sql.sqltypes import BigInteger

import milepost.models  # noqa: F401  (every table on Base.metadata)
from bench.common import log
from milepost.accounts import service as accounts
from milepost.accounts.models import User
from milepost.db import Base
from milepost.orders import repository as orders_repo
from milepost.orders import service as orders
from milepost.runtime import Runtime

USER_PAIRS = 500
PASSWORD = "bench password 123"
AMOUNTS = (10_000, 20_000)


@dataclass
class Template:
    order_id: str
    milestone_ids: list[str]
    buyer_id: str
    seller_id: str
    # original id string -> (prefix, index k) used to build the clone's id
    id_slots: dict[str, tuple[str, int]] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)  # per cloned table with an int pk
    # "table.column" -> the ids (and user ids) that occur in it in the template rows
    occurs: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "milestone_ids": self.milestone_ids,
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
            "id_slots": {k: list(v) for k, v in self.id_slots.items()},
            "row_counts": self.row_counts,
            "occurs": self.occurs,
        }


def _clone_id(prefix: str, k: int, i: int) -> str:
    return f"{prefix}_F{k:02d}{i:023d}"


def user_id(prefix: str, role: str, pair: int) -> str:
    return f"{prefix}_{role}{pair:025d}"


def order_id(tpl: Template, i: int) -> str:
    return _clone_id(*tpl.id_slots[tpl.order_id], i) if i else tpl.order_id


def milestone_id(tpl: Template, i: int, seq: int) -> str:
    original = tpl.milestone_ids[seq - 1]
    return _clone_id(*tpl.id_slots[original], i) if i else original


def buyer_id(tpl: Template, i: int, pairs: int = USER_PAIRS) -> str:
    return user_id(tpl.buyer_id.split("_")[0], "B", i % pairs) if i else tpl.buyer_id


def seller_id(tpl: Template, i: int, pairs: int = USER_PAIRS) -> str:
    return user_id(tpl.seller_id.split("_")[0], "S", i % pairs) if i else tpl.seller_id


# ---------------------------------------------------------------------------------------------
# The template order
# ---------------------------------------------------------------------------------------------


def make_template(rt: Runtime) -> Template:
    """In an empty migrated database: two users and one order with milestone 1 delivered."""
    with rt.unit_of_work() as ctx:
        buyer = accounts.create_user(
            ctx, email="buyer@bench.example", password=PASSWORD, name="Buyer"
        )
        seller = accounts.create_user(
            ctx, email="seller@bench.example", password=PASSWORD, name="Seller"
        )
    with rt.unit_of_work() as ctx:
        order = orders.propose(
            ctx,
            actor=seller,
            role="seller",
            counterparty_email=buyer.email,
            title="Bench website",
            currency="USD",
            milestones=[
                {
                    "title": f"Page {n}",
                    "description": "",
                    "acceptance_criteria": [f"page {n} live"],
                    "amount": amount,
                    "due_days": 5,
                }
                for n, amount in enumerate(AMOUNTS, start=1)
            ],
        )
        oid = order.id
    with rt.unit_of_work() as ctx:
        orders.accept(ctx, actor=buyer, order_id=oid, plan_version=1)
    with rt.unit_of_work() as ctx:
        orders.fund(ctx, actor=buyer, order_id=oid)
    with rt.reading() as ctx:
        mids = [m.id for m in orders_repo.milestones_of(ctx.session, oid)]
    with rt.unit_of_work() as ctx:
        orders.deliver(
            ctx, actor=seller, order_id=oid, milestone_id=mids[0], message="page 1 is live"
        )
    tpl = Template(order_id=oid, milestone_ids=mids, buyer_id=buyer.id, seller_id=seller.id)
    _collect_ids(rt.db.engine, tpl)
    return tpl


def _cloned_tables() -> list[Any]:
    """orders, every table with an order_id, and tables hanging off those by a foreign key."""
    tables = Base.metadata.sorted_tables  # parents before children: inserts respect foreign keys
    names = {t.name for t in tables if t.name == "orders" or "order_id" in t.c}
    return [
        t
        for t in tables
        if t.name in names
        or (
            t.name != "users"
            and any(fk.column.table.name in names for c in t.c for fk in c.foreign_keys)
        )
    ]


def _template_filter(table: Any, tpl: Template) -> str:
    if table.name == "orders":
        return f"id = '{tpl.order_id}'"
    if "order_id" in table.c:
        return f"order_id = '{tpl.order_id}'"
    for c in table.c:
        for fk in c.foreign_keys:
            parent = fk.column.table
            if parent.name == "orders" or "order_id" in parent.c:
                return (
                    f"{c.name} IN (SELECT {fk.column.name} FROM {parent.name} "
                    f"WHERE {_template_filter(parent, tpl)})"
                )
    raise AssertionError(table.name)


def _key(table: Any) -> str:
    """The name of the table's one primary-key column (`id` but for the forecast schedule's)."""
    (column,) = table.primary_key.columns
    return str(column.name)


def _int_pk(table: Any) -> str | None:
    pk = list(table.primary_key.columns)
    if len(pk) == 1 and isinstance(pk[0].type, Integer | BigInteger):
        return str(pk[0].name)
    return None


def _collect_ids(engine: Engine, tpl: Template) -> None:
    slots: dict[str, tuple[str, int]] = {}
    with engine.connect() as conn:
        for table in _cloned_tables():
            rows = conn.execute(
                text(f"SELECT * FROM {table.name} WHERE {_template_filter(table, tpl)}")
            )
            keys = list(rows.keys())
            fetched = rows.all()
            pk = _int_pk(table)
            if pk is not None:
                ids = sorted(r[keys.index(pk)] for r in fetched)
                # Clones offset integer ids by i × n: the template's must be exactly 1..n.
                assert ids == list(range(1, len(ids) + 1)), (table.name, ids)
                tpl.row_counts[table.name] = len(ids)
            for col in ("id", "uid"):
                if col in keys and table.c[col].type.python_type is str:
                    for r in fetched:
                        value = r[keys.index(col)]
                        prefix = value.split("_")[0]
                        slots.setdefault(value, (prefix, len(slots)))
    tpl.id_slots = slots
    every = [*slots, tpl.buyer_id, tpl.seller_id]
    with engine.connect() as conn:
        for table in _cloned_tables():
            rows = conn.execute(
                text(f"SELECT * FROM {table.name} WHERE {_template_filter(table, tpl)}")
            )
            keys = list(rows.keys())
            fetched = rows.all()
            for col in table.c:
                if isinstance(col.type, String | Text | JSON):
                    values = [json.dumps(r[keys.index(col.name)]) for r in fetched]
                    tpl.occurs[f"{table.name}.{col.name}"] = [
                        i for i in every if any(i in v for v in values)
                    ]


# ---------------------------------------------------------------------------------------------
# Cloning inside the database
# ---------------------------------------------------------------------------------------------


def _lpad(dialect: str, expr: str, width: int) -> str:
    if dialect == "postgresql":
        return f"lpad(CAST({expr} AS text), {width}, '0')"
    return f"printf('%0{width}d', {expr})"


def _user_expr(dialect: str, original: str, role: str, pairs_expr: str) -> str:
    prefix = original.split("_")[0]
    return f"'{prefix}_{role}' || {_lpad(dialect, pairs_expr, 25)}"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _clone_series(dialect: str, start: int, stop: int, n: int, pairs: int) -> tuple[str, str]:
    """(WITH prefix, FROM item) giving n rows per clone i in [start, stop], in the order
    (i, k) for k in 0..n-1: s.i, s.k, and the padded digits of clone i's ids — s.p (23 digits of
    i), s.u (25 digits of its user pair). Joining s.k to the k-th template row makes the clones in
    order of i, as production appends orders (one counter, so ordered ids append to their indexes
    instead of splitting pages all over them). On PostgreSQL `OFFSET 0` keeps the subquery from
    being flattened (which would recompute the padding at every reference)."""
    first, last = start * n, stop * n + n - 1
    if dialect == "postgresql":
        return "", (
            f"(SELECT g.j / {n} AS i, mod(g.j, {n}) AS k, lpad(CAST(g.j / {n} AS text), 23, '0') AS p, "
            f"lpad(CAST(mod(g.j / {n}, {pairs}) AS text), 25, '0') AS u "
            f"FROM generate_series({first}, {last}) AS g(j) OFFSET 0) AS s"
        )
    return (
        f"WITH RECURSIVE g(j) AS (SELECT {first} UNION ALL SELECT j + 1 FROM g WHERE j < {last}), "
        f"s AS MATERIALIZED (SELECT j / {n} AS i, j % {n} AS k, printf('%023d', j / {n}) AS p, "
        f"printf('%025d', (j / {n}) % {pairs}) AS u FROM g) ",
        "s",
    )


def _substitutions(tpl: Template) -> dict[str, str]:
    """Every id of the template order -> the SQL expression of clone s.i's id in its place."""
    subs = {
        original: f"'{prefix}_F{k:02d}' || s.p" for original, (prefix, k) in tpl.id_slots.items()
    }
    subs[tpl.buyer_id] = f"'{tpl.buyer_id.split('_')[0]}_B' || s.u"
    subs[tpl.seller_id] = f"'{tpl.seller_id.split('_')[0]}_S' || s.u"
    return subs


def _spliced(value: str, subs: dict[str, str], pattern: re.Pattern[str]) -> str | None:
    """`value` as a concatenation of its literal text and the clone's ids (None: no id in it).

    The template's text is known, so each clone's text is built by concatenation instead of
    searching it with replace() for every id in every cloned row."""
    parts: list[str] = []
    pos = 0
    for m in pattern.finditer(value):
        if m.start() > pos:
            parts.append(_quote(value[pos : m.start()]))
        parts.append(subs[m.group()])
        pos = m.end()
    if not parts:
        return None
    if pos < len(value):
        parts.append(_quote(value[pos:]))
    return " || ".join(parts)


def _select_list(
    dialect: str, table: Any, tpl: Template, rows: list[dict[str, Any]], subs: dict[str, str]
) -> list[str]:
    """The SELECT list making clone s.i of the template rows of `table` (alias t).

    Integer ids (and integer foreign keys to cloned tables) are offset by i × rows per order; every
    text or JSON value of a template row that contains an id is rebuilt with the clone's ids, per
    template row (`CASE t.id WHEN … THEN …`); everything else is copied as is."""
    pattern = re.compile("|".join(re.escape(o) for o in sorted(subs, key=len, reverse=True)))
    pk, key = _int_pk(table), _key(table)
    exprs = []
    for col in table.c:
        fk_tables = [fk.column.table.name for fk in col.foreign_keys]
        if col.name == pk:
            exprs.append(f"t.{col.name} + s.i * {tpl.row_counts[table.name]}")
        elif fk_tables and fk_tables[0] in tpl.row_counts:
            exprs.append(f"t.{col.name} + s.i * {tpl.row_counts[fk_tables[0]]}")
        elif isinstance(col.type, String | Text | JSON):
            whens = {}
            for row in rows:
                value = row[col.name]
                spliced = None if value is None else _spliced(value, subs, pattern)
                if spliced is not None:
                    whens[row[key]] = spliced
            if not whens:
                exprs.append(f"t.{col.name}")
                continue
            is_pg_json = isinstance(col.type, JSON) and dialect == "postgresql"
            if len(whens) == len(rows) and len(set(whens.values())) == 1:
                expr = next(iter(whens.values()))  # the same in every template row
            else:
                cases = " ".join(
                    f"WHEN {_quote(k) if isinstance(k, str) else int(k)} THEN {v}"
                    for k, v in whens.items()
                )
                unchanged = f"CAST(t.{col.name} AS text)" if is_pg_json else f"t.{col.name}"
                expr = f"CASE t.{key} {cases} ELSE {unchanged} END"
            if is_pg_json:
                expr = f"CAST({expr} AS json)"
            exprs.append(expr)
        else:
            exprs.append(f"t.{col.name}")
    return exprs


def _template_rows(conn: Any, table: Any, tpl: Template) -> list[dict[str, Any]]:
    """The template's rows of `table`: its key, and every text/JSON column as the database's text."""
    cols = [c for c in table.c if isinstance(c.type, String | Text | JSON)]
    key = _key(table)
    select_list = ", ".join(
        [
            f"t.{key}",
            *(
                f"CAST(t.{c.name} AS text)" if isinstance(c.type, JSON) else f"t.{c.name}"
                for c in cols
            ),
        ]
    )
    rows = conn.exec_driver_sql(
        f"SELECT {select_list} FROM {table.name} AS t WHERE {_aliased_filter(table, tpl)}"
    ).all()
    return [dict(zip([key, *(c.name for c in cols)], r, strict=True)) for r in rows]


def clone_orders(
    engine: Engine,
    tpl: Template,
    *,
    start: int,
    count: int,
    batch: int = 250_000,
    pairs: int = USER_PAIRS,
) -> None:
    """Clones start .. start+count-1 of the template order (users must exist: `clone_users`).

    Clone i belongs to user pair i % pairs (pairs=1: every clone has the same buyer and seller).
    One INSERT … SELECT per table and batch of `batch` clones, each batch one transaction, parents
    before children. On PostgreSQL the batch runs with `session_replication_role = replica`: the
    foreign-key triggers do not re-check, row by row, parents this very transaction copied (the
    constraints stay in the schema; every clone is a copy of a valid order, and
    tests/bench checks every foreign key of a cloned database). Ends with `finish_bulk_load`.
    """
    dialect = engine.dialect.name
    subs = _substitutions(tpl)
    with engine.connect() as conn:
        statements = []
        for table in _cloned_tables():
            rows = _template_rows(conn, table, tpl)
            if not rows:
                continue
            exprs = _select_list(dialect, table, tpl, rows, subs)
            template = (
                f"(SELECT t.*, row_number() OVER (ORDER BY t.{_key(table)}) - 1 AS clone_k FROM {table.name} "
                f"AS t WHERE {_aliased_filter(table, tpl)}) AS t"
            )
            statements.append(
                (table.name, ", ".join(c.name for c in table.c), exprs, template, len(rows))
            )
    for lo in range(start, start + count, batch):
        hi = min(start + count - 1, lo + batch - 1)
        with engine.begin() as conn:
            conn = conn.execution_options(no_parameters=True)
            if dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for name, cols, exprs, template, n in statements:
                with_prefix, series = _clone_series(dialect, lo, hi, n, pairs)
                conn.exec_driver_sql(
                    f"INSERT INTO {name} ({cols}) {with_prefix}"
                    f"SELECT {', '.join(exprs)} FROM {series} JOIN {template} ON t.clone_k = s.k"
                )
        if count > batch:
            log(f"cloned orders {lo:,}..{hi:,}")
    finish_bulk_load(engine)


def _aliased_filter(table: Any, tpl: Template) -> str:
    # The template filter, qualified with the alias t so it never binds to the series.
    f = _template_filter(table, tpl)
    first = f.split(" ", 1)
    return f"t.{first[0]} {first[1]}"


def clone_users(engine: Engine, tpl: Template) -> None:
    """USER_PAIRS copies of the template's buyer and seller."""
    dialect = engine.dialect.name
    users = Base.metadata.tables["users"]
    with_prefix, series = _clone_series(dialect, 0, USER_PAIRS - 1, 1, USER_PAIRS)
    with engine.begin() as conn:
        conn = conn.execution_options(no_parameters=True)
        for original, role in ((tpl.buyer_id, "B"), (tpl.seller_id, "S")):
            exprs = []
            for col in users.c:
                if col.name == "id":
                    exprs.append(_user_expr(dialect, original, role, "s.i"))
                elif col.name == "email":
                    exprs.append(f"'p' || {_lpad(dialect, 's.i', 6)} || '.' || t.email")
                else:
                    exprs.append(f"t.{col.name}")
            cols = ", ".join(c.name for c in users.c)
            conn.exec_driver_sql(
                f"INSERT INTO users ({cols}) {with_prefix}SELECT {', '.join(exprs)} "
                f"FROM users AS t, {series} WHERE t.id = '{original}'"
            )


def finish_bulk_load(engine: Engine) -> None:
    """Move identity sequences past the explicit ids; VACUUM ANALYZE (PostgreSQL) / ANALYZE.

    VACUUM sets hint bits and the visibility map once, now, as autovacuum eventually does on a
    production database — otherwise autovacuum (or the first readers) would do it in the middle
    of the timed runs that follow a bulk load of a million orders."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in _cloned_tables():
                pk = _int_pk(table)
                if pk is not None:
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk}'), "
                        f"(SELECT COALESCE(max({pk}), 1) FROM {table.name}))"
                    )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        import sqlite3

        raw = sqlite3.connect(engine.url.database or "", isolation_level=None)
        try:
            raw.execute("ANALYZE")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()


def load_users(rt: Runtime, tpl: Template, pairs: int = USER_PAIRS) -> dict[str, User]:
    """Every cloned user by id, detached and readable (services need only id and is_operator)."""
    with rt.reading() as ctx:
        users = ctx.session.query(User).all()
    return {u.id: u for u in users}


def template_from_json(data: dict[str, Any]) -> Template:
    return Template(
        order_id=data["order_id"],
        milestone_ids=data["milestone_ids"],
        buyer_id=data["buyer_id"],
        seller_id=data["seller_id"],
        id_slots={k: (v[0], v[1]) for k, v in data["id_slots"].items()},
        row_counts=data["row_counts"],
        occurs=data["occurs"],
    )


def dumps(tpl: Template) -> str:
    return json.dumps(tpl.as_json())


def quick_engine(url: str) -> Engine:
    return create_engine(url)
