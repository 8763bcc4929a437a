"""The one Alembic history builds, on SQLite and on PostgreSQL, exactly the schema `models.py` describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.registry.models import Base
from services.registry.repository import migrate
from shared.database import create_engine


async def test_migrations_build_the_models_schema_and_run_twice(database_url):
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)  # every start runs it: a no-op at head

        def differences(connection):
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)

        async with engine.connect() as connection:
            diffs = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    # PostgreSQL's trigram search indexes and SQLite's FTS5 search table (with its shadow tables) exist only in the
    # migrations (not expressible portably in the models).
    diffs = [d for d in diffs if not (d[0] == "remove_index" and d[1].name.endswith("_trgm"))
             and not (d[0] == "remove_table" and d[1].name.startswith("complaints_fts"))]
    assert diffs == []
