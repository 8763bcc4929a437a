"""Index for the staff list filtered by service, newest first (1,000,000-complaint register, bench/registry).

Revision ID: 0003_service_list_index
Revises: 0002_list_and_report_indexes
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0003_service_list_index"
down_revision = "0002_list_and_report_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_complaints_service_year_sequence", "complaints", ["service_concerned", "year", "sequence"])


def downgrade() -> None:
    op.drop_index("ix_complaints_service_year_sequence", table_name="complaints")
