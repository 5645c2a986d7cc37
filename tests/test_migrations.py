"""The schema is made only by the Alembic migrations: the models must describe exactly that schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from milepost import migrate
from milepost.models import Base


def test_models_and_migrations_agree(runtime):
    # The runtime's database was built by running the migrations (see tests/conftest.py).
    with runtime.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_migrations_are_at_head(runtime):
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config(runtime.db.url)).get_current_head()
    assert migrate.current_revision(runtime.db.engine) == head
