"""Issue 11: the facts screening weighs, on file; intake's rule record and the new text, with each thread message.

`complaints.facts_date`, `last_step_date` and `first_line_contacted`: what staff recorded (or a letter's metadata
stated) of the facts screening weighs for admissibility (`screening.ScreeningInput`). `thread_messages.rules`: the
named rules of intake that hit for an incoming message (`shared.events.RuleHit`: rule, outcome, why);
`thread_messages.new_text`: what the sender wrote this time, without the quoted history (`body` keeps it all).

Added as nullable columns, like migration 0006 (no table copy on SQLite, whose batch mode would drop the FTS5
triggers of 0004); older rows keep NULL, which reads "not recorded".

Revision ID: 0007_facts_and_rules
Revises: 0006_sender_trust
Create Date: 2027-01-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_facts_and_rules"
down_revision = "0006_sender_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("complaints", sa.Column("facts_date", sa.Date(), nullable=True))
    op.add_column("complaints", sa.Column("last_step_date", sa.Date(), nullable=True))
    op.add_column("complaints", sa.Column("first_line_contacted", sa.Boolean(), nullable=True))
    op.add_column("thread_messages", sa.Column("new_text", sa.Text(), nullable=True))
    op.add_column("thread_messages", sa.Column("rules", sa.JSON(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (no table copy, the triggers stay).
    for table, name in (("thread_messages", "rules"), ("thread_messages", "new_text"),
                        ("complaints", "first_line_contacted"), ("complaints", "last_step_date"),
                        ("complaints", "facts_date")):
        op.drop_column(table, name)
