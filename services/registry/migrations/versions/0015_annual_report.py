"""The published annual report's introduction per year and language (issue 17, `annual_report/introductions.py`).

Revision ID: 0015_annual_report
Revises: 0014_notices_by_kind
Create Date: 2027-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_annual_report"
down_revision = "0014_notices_by_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annual_report_introductions",
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("language", sa.String(2), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("annual_report_introductions")
