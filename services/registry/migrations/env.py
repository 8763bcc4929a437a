"""Alembic environment of the registry: runs on the connection handed over by `shared.database.upgrade_to_head`."""

from services.registry.models import Base
from shared.database import run_migrations_in_alembic_env

run_migrations_in_alembic_env(Base.metadata)
