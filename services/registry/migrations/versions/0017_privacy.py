"""Retention, anonymisation and legal holds (issue 16, `services/registry/privacy/`).

- `complaints.anonymised_at`: when the file's identity and free texts were replaced by placeholders (retention or a
  citizen's erasure request); NULL while they are kept. Added with `ALTER TABLE ... ADD COLUMN` like 0006/0007/0010:
  no table copy, so SQLite's FTS5 triggers of 0004 stay. No index of its own: the retention job finds its candidates
  through `ix_complaints_closed_at` / `ix_complaints_answered_at` (old ended files) and tests this column on those.
- `legal_holds`: a hold placed on a file (litigation, an inspection, a court's request) suspends its retention and
  erasure until released; every hold stays as a row (placed and released by whom, when, why): the record of why a
  file outlived its schedule. Indexed by file; the retention job asks, per candidate page, which are held.

Revision ID: 0017_privacy
Revises: 0016_citizen_access
Create Date: 2027-03-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_privacy"
down_revision = "0016_citizen_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("complaints", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.Text(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.Text(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_legal_holds_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index(op.f("ix_legal_holds_complaint_id"), "legal_holds", ["complaint_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_legal_holds_complaint_id"), table_name="legal_holds")
    op.drop_table("legal_holds")
    # SQLite >= 3.35 drops a column in place (no table copy, the triggers stay).
    op.drop_column("complaints", "anonymised_at")
