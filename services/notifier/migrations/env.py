"""Alembic environment of the notifier's database: run through `shared.database.upgrade_to_head`."""

from services.notifier.models import metadata
from shared.database import run_migrations_in_alembic_env

run_migrations_in_alembic_env(metadata)
