"""Administrations concerned and requests for their position (issue 15).

- `administrations`: the directory of services and administrations the office writes to (addresses, language,
  contact person, their own answer deadline in days), edited by admins in the back office or imported from TOML.
- `position_requests`: a request for an administration's position on a file, with its due date, reminder date, the
  moments its reminder and its "no answer" warning went out (each once), and when it was answered. The watcher's
  sweep reads the unanswered ones by (`answered_at`, `due`).
- `thread_messages.party` and `thread_messages.citizen_visible`: an administration's message in a file's thread,
  and whether staff decided the citizen may see it. Added with `ALTER TABLE ... ADD COLUMN` (no table copy).

Revision ID: 0011_administrations
Revises: 0010_backoffice_register
Create Date: 2027-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_administrations"
down_revision = "0010_backoffice_register"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "administrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("postal_address", sa.Text(), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("contact_person", sa.Text(), nullable=False),
        sa.Column("answer_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_administrations")),
        sa.UniqueConstraint("key", name=op.f("uq_administrations_key")),
    )
    op.create_table(
        "position_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("administration_id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("recipient_email", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("remind_on", sa.Date(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_message_key", sa.String(512), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_position_requests_complaint_id_complaints")),
        sa.ForeignKeyConstraint(["administration_id"], ["administrations.id"],
                                name=op.f("fk_position_requests_administration_id_administrations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_requests")),
        sa.UniqueConstraint("request_key", name=op.f("uq_position_requests_request_key")),
    )
    op.create_index("ix_position_requests_complaint_id", "position_requests", ["complaint_id"])
    op.create_index("ix_position_requests_administration_id", "position_requests", ["administration_id"])
    op.create_index("ix_position_requests_open", "position_requests", ["answered_at", "due"])
    op.add_column("thread_messages", sa.Column("party", sa.String(32), nullable=True))
    op.add_column("thread_messages", sa.Column("citizen_visible", sa.Boolean(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (no table copy), as in 0006.
    op.drop_column("thread_messages", "citizen_visible")
    op.drop_column("thread_messages", "party")
    op.drop_index("ix_position_requests_open", table_name="position_requests")
    op.drop_index("ix_position_requests_administration_id", table_name="position_requests")
    op.drop_index("ix_position_requests_complaint_id", table_name="position_requests")
    op.drop_table("position_requests")
    op.drop_table("administrations")
