"""Unbounded text for the notifier's columns filled from outside without an index.

A complainant's display name of a few hundred characters (or a staff member's name, or a citizen's Message-ID
quoted in In-Reply-To) overflowed a VARCHAR on PostgreSQL: the error is not transient, so the event was retried,
then dead-lettered, and the citizen never got an acknowledgment. SQLite never enforced those lengths. Indexed
columns keep their bound: addresses are refused above RFC 5321's 254 characters before they reach the database
(`headers.clean_address`), and notification keys and case numbers are ours.

Revision ID: 0003_unbounded_external_text
Revises: 0002_files_at_risk
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_unbounded_external_text"
down_revision = "0002_files_at_risk"
branch_labels = None
depends_on = None

# table -> (column, former VARCHAR length)
WIDENED: dict[str, tuple[tuple[str, int], ...]] = {
    "notices": (("recipient_name", 300), ("in_reply_to", 998), ("printed_by", 200)),
    "files_at_risk": (("handler_name", 300),),
}


def upgrade() -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column, length in columns:
                batch.alter_column(column, existing_type=sa.String(length), type_=sa.Text())


def downgrade() -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column, length in columns:
                # Values that grew meanwhile are cut, not refused (PostgreSQL would refuse them).
                batch.alter_column(column, existing_type=sa.Text(), type_=sa.String(length),
                                   postgresql_using=f"left({column}, {length})")
