"""Outbox of notices and flags on failed addresses.

Revision ID: 0001_outbox
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_outbox"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notification_key", sa.String(400), nullable=False),
        sa.Column("complaint_number", sa.String(64), nullable=False),
        sa.Column("notice_kind", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_name", sa.String(300), nullable=False),
        sa.Column("postal_address", sa.Text(), nullable=False),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("letter_pdf", sa.LargeBinary(), nullable=True),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("in_reply_to", sa.String(998), nullable=True),
        sa.Column("references", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=False), nullable=True),
        sa.Column("give_up_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("outcome_published", sa.Boolean(), nullable=False),
        sa.Column("printed_by", sa.String(200), nullable=True),
        sa.UniqueConstraint("notification_key", name="uq_notices_notification_key"),
    )
    op.create_index("ix_notices_complaint_number", "notices", ["complaint_number"])
    op.create_index("ix_notices_recipient", "notices", ["recipient"])
    op.create_index("ix_notices_status", "notices", ["status"])
    op.create_index("ix_notices_next_attempt_at", "notices", ["next_attempt_at"])
    op.create_table(
        "address_flags",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("notification_key", sa.String(400), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("address_flags")
    op.drop_index("ix_notices_next_attempt_at", "notices")
    op.drop_index("ix_notices_status", "notices")
    op.drop_index("ix_notices_recipient", "notices")
    op.drop_index("ix_notices_complaint_number", "notices")
    op.drop_table("notices")
