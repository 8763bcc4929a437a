"""Requests for information to the citizen (issue 15): the `information_requests` table.

One row per request staff sent (`request_key` unique: the same form submitted twice is one request): what was asked
(`missing`, the codes of `information_requests.MissingItem`, and staff's text), the day it was made and the reply
date told to the citizen, whether it started the pause of the answer clock, the reminder's stored key
(`reminder_sent_at`), and how it ended (`resolution`: answered, closed_no_answer, ended; NULL while it waits), with
the change-log ids of each step. The pause itself stays the complaint's (`paused_since`, `paused_days`): nothing on
`complaints` changes here.

Index (`resolution`, `requested_on`): the watcher's sweep reads the open requests (resolution IS NULL) made on or
before a day, a seek on both databases whatever the size of the history of answered ones.

Revision ID: 0012_information_requests
Revises: 0011_administrations
Create Date: 2027-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_information_requests"
down_revision = "0011_administrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "information_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(200), nullable=False),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.Column("reply_by", sa.Date(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_message_key", sa.String(512), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.Column("request_change_id", sa.String(64), nullable=True),
        sa.Column("reminder_change_id", sa.String(64), nullable=True),
        sa.Column("end_change_id", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_information_requests_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_information_requests")),
        sa.UniqueConstraint("request_key", name=op.f("uq_information_requests_request_key")),
    )
    op.create_index(op.f("ix_information_requests_complaint_id"), "information_requests", ["complaint_id"])
    op.create_index("ix_information_requests_resolution_requested_on", "information_requests",
                    ["resolution", "requested_on"])


def downgrade() -> None:
    op.drop_index("ix_information_requests_resolution_requested_on", table_name="information_requests")
    op.drop_index(op.f("ix_information_requests_complaint_id"), table_name="information_requests")
    op.drop_table("information_requests")
