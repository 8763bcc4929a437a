"""Files at risk per handler, for the optional daily deadline digest.

Revision ID: 0002_files_at_risk
Revises: 0001_outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_files_at_risk"
down_revision = "0001_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files_at_risk",
        sa.Column("complaint_number", sa.String(64), primary_key=True),
        sa.Column("deadline_kind", sa.String(32), primary_key=True),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("handler_email", sa.String(320), nullable=False),
        sa.Column("handler_name", sa.String(300), nullable=False),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("subject_line", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=False), nullable=True),
    )
    op.create_index("ix_files_at_risk_handler_email", "files_at_risk", ["handler_email"])


def downgrade() -> None:
    op.drop_index("ix_files_at_risk_handler_email", "files_at_risk")
    op.drop_table("files_at_risk")
