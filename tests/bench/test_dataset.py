"""The bulk clone is a row-for-row copy of the template order, and keeps every foreign key.

On PostgreSQL the clone runs with the foreign-key triggers off (session_replication_role =
replica), so this checks every foreign key of the schema by an anti-join instead.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from milepost.devtools.postgres import find_pg_bin


@pytest.mark.skipif(find_pg_bin() is None, reason="needs PostgreSQL server binaries")
def test_postgres_clones_keep_every_foreign_key_and_the_ledger_sound() -> None:
    from bench.common import Workspace

    from bench import dataset as ds
    from milepost.db import Base
    from milepost.ledger.audit import run_audit

    ws = Workspace()
    try:
        url = ws.new_database("postgresql", "clone")
        rt = ws.runtime(url)
        tpl = ds.make_template(rt)
        ds.clone_users(rt.db.engine, tpl)
        with rt.db.engine.connect() as conn:
            before = {
                t.name: conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar_one()
                for t in ds._cloned_tables()
            }
        ds.clone_orders(rt.db.engine, tpl, start=1, count=23, batch=10)  # three batches
        with rt.db.engine.connect() as conn:
            for t in ds._cloned_tables():
                n = conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar_one()
                assert n == before[t.name] * 24, t.name
            for table in Base.metadata.sorted_tables:
                for fk in table.foreign_keys:
                    col, parent = fk.parent.name, fk.column
                    orphans = conn.execute(
                        text(
                            f"SELECT count(*) FROM {table.name} AS c "
                            f"LEFT JOIN {parent.table.name} AS p ON p.{parent.name} = c.{col} "
                            f"WHERE c.{col} IS NOT NULL AND p.{parent.name} IS NULL"
                        )
                    ).scalar_one()
                    assert orphans == 0, f"{table.name}.{col} -> {parent.table.name}"
            # Clones are appended in order of i, as production appends orders: the heap is in
            # id order (the planner's statistics, refreshed by the load, say how closely).
            correlation = conn.execute(
                text(
                    "SELECT correlation FROM pg_stats WHERE tablename = 'events' AND attname = 'id'"
                )
            ).scalar_one()
            assert correlation > 0.95
            assert (
                conn.execute(
                    text("SELECT count(*) FROM orders WHERE id = :id"), {"id": ds.order_id(tpl, 23)}
                ).scalar_one()
                == 1
            )
        with rt.reading() as ctx:
            report = run_audit(ctx.session)
        assert all(c.ok for c in report.checks), [c.name for c in report.checks if not c.ok]
        rt.db.dispose()
    finally:
        ws.close()
