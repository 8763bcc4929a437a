"""The notifier's Alembic history builds, on SQLite and on PostgreSQL, the schema `models.py` describes; migration
0004 fills the counted key (`quota.limit_key`) of the notices a limit may still count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from services.notifier.models import metadata
from services.notifier.wiring import MIGRATIONS
from shared.database import alembic_config, create_engine, upgrade_to_head


async def test_migrations_build_the_models_schema_and_fill_recent_limit_keys(database_url):
    engine = create_engine(database_url)
    config = alembic_config(MIGRATIONS, engine.url.render_as_string(hide_password=False))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        def to_0003(connection):
            config.attributes["connection"] = connection
            command.upgrade(config, "0003_unbounded_external_text")

        async with engine.begin() as connection:
            await connection.run_sync(to_0003)
            for key, recipient, created in [("recent", "v.ictim+1@gmail.com", now - timedelta(hours=3)),
                                            ("old", "victim@gmail.com", now - timedelta(days=30)),
                                            ("letter", "", now)]:
                await connection.execute(text(
                    "INSERT INTO notices (notification_key, complaint_number, notice_kind, channel, recipient,"
                    " recipient_name, postal_address, language, subject, body_text, body_html, message_id,"
                    " \"references\", status, attempts, next_attempt_at, give_up_at, created_at, outcome_published)"
                    " VALUES (:key, 'MED-2026-00001', 'acknowledgment', 'email', :recipient, '', '', 'fr', 's', 'b',"
                    " '', '<m@x>', '', 'sent', 1, :created, :created, :created, true)"),
                    {"key": key, "recipient": recipient, "created": created})
        await upgrade_to_head(engine, MIGRATIONS)
        await upgrade_to_head(engine, MIGRATIONS)  # every start runs it: a no-op at head

        def differences(connection):
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)

        async with engine.connect() as connection:
            diffs = await connection.run_sync(differences)
            keys = dict((await connection.execute(text("SELECT notification_key, limit_key FROM notices"))).all())
    finally:
        await engine.dispose()
    assert diffs == []
    assert keys == {"recent": "unverified:victim@gmail.com", "old": None, "letter": None}
