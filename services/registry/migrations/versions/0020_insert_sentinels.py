"""A column that orders the rows of one multi-row INSERT on `case_parties` (issue 12).

SQLite gives new rows their ids itself and does not promise that `INSERT ... VALUES (...), (...) RETURNING id`
returns them in the order of the values. SQLAlchemy therefore inserts such rows one statement each, unless a column
tells the returned rows apart: an "insert sentinel". A batch's complaints, thread entries, change-log entries and
outbox events have one already (their number, message key, change id or dedup id, unique and set by the registry;
`models.py` marks them). A case party has none (the same citizen may be a party of two files registered together),
so it gets this nullable integer that SQLAlchemy fills with the row's place in its batch. It means nothing else and
is never read.

Revision ID: 0020_insert_sentinels
Revises: 0019_survey_answers_waiting
Create Date: 2027-03-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_insert_sentinels"
down_revision = "0019_survey_answers_waiting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without default: SQLite adds it without rewriting the table, PostgreSQL without a rewrite.
    op.add_column("case_parties", sa.Column("insert_sentinel", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_parties") as batch:
        batch.drop_column("insert_sentinel")
