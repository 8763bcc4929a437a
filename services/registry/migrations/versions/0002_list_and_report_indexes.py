"""Indexes for the staff lists and the annual indicators on a large register (bench/registry, issue 4 evidence).

- status + year + sequence: a status filter in the list's order (newest first) without sorting;
- closed_at, answered_at, answer_due: the annual indicators select by each of them (an OR the planners answer
  with one index scan per branch);
- PostgreSQL: trigram (pg_trgm) GIN indexes for the text search (`lower(column) LIKE '%text%'`) on subject, name
  and email. Creating the extension needs the right to do so; without it the search still works, by a scan.

Revision ID: 0002_list_and_report_indexes
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_list_and_report_indexes"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TRIGRAM_COLUMNS = ("subject_line", "complainant_name", "complainant_email")


def _trigram_available() -> bool:
    bind = op.get_bind()
    try:
        with bind.begin_nested():  # a refusal must not abort the migration's transaction
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    op.create_index("ix_complaints_status_year_sequence", "complaints", ["status", "year", "sequence"])
    op.create_index(op.f("ix_complaints_closed_at"), "complaints", ["closed_at"])
    op.create_index(op.f("ix_complaints_answered_at"), "complaints", ["answered_at"])
    op.create_index(op.f("ix_complaints_answer_due"), "complaints", ["answer_due"])
    if op.get_bind().dialect.name == "postgresql" and _trigram_available():
        for column in TRIGRAM_COLUMNS:
            op.execute(f"CREATE INDEX ix_complaints_{column}_trgm ON complaints "
                       f"USING gin (lower({column}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in TRIGRAM_COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_complaints_{column}_trgm")
    op.drop_index(op.f("ix_complaints_answer_due"), table_name="complaints")
    op.drop_index(op.f("ix_complaints_answered_at"), table_name="complaints")
    op.drop_index(op.f("ix_complaints_closed_at"), table_name="complaints")
    op.drop_index("ix_complaints_status_year_sequence", table_name="complaints")
