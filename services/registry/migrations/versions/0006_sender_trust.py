"""What is known of who wrote each incoming message (issue 10, "Trust at the door").

On `complaints` (its first message) and `thread_messages`: the sender verdict and its evidence, identity notes,
the SMTP session's provenance (peer IP, HELO name, SMTP AUTH login), the forwarding staff member and whether that
forward is proven. `complaints.acknowledgment_suppressed` says why no acknowledgment was asked for;
`thread_messages.disposition_of` marks a read receipt (RFC 8098) with the Message-ID of the notice it reports on.

Every column is new and nullable: plain `ALTER TABLE ... ADD COLUMN` on both databases, no table copy (SQLite's
batch mode would drop the FTS5 triggers of migration 0004). Rows written before stay NULL: "not recorded".

Revision ID: 0006_sender_trust
Revises: 0005_unbounded_external_text
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_sender_trust"
down_revision = "0005_unbounded_external_text"
branch_labels = None
depends_on = None


def _trust_columns() -> list[sa.Column]:
    return [
        sa.Column("sender_verdict", sa.String(16), nullable=True),
        sa.Column("sender_evidence", sa.Text(), nullable=True),
        sa.Column("identity_notes", sa.JSON(), nullable=True),
        sa.Column("peer_ip", sa.Text(), nullable=True),
        sa.Column("peer_helo", sa.Text(), nullable=True),
        sa.Column("authenticated_as", sa.Text(), nullable=True),
        sa.Column("forwarded_by_name", sa.Text(), nullable=True),
        sa.Column("forwarded_by_email", sa.Text(), nullable=True),
        sa.Column("forward_verified", sa.Boolean(), nullable=True),
    ]


ADDED: dict[str, list[sa.Column]] = {
    "complaints": [*_trust_columns(), sa.Column("acknowledgment_suppressed", sa.Text(), nullable=True)],
    "thread_messages": [*_trust_columns(), sa.Column("disposition_of", sa.Text(), nullable=True)],
}


def upgrade() -> None:
    for table, columns in ADDED.items():
        for column in columns:
            op.add_column(table, column)


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (no table copy, the triggers stay).
    for table, columns in ADDED.items():
        for column in reversed(columns):
            op.drop_column(table, column.name)
