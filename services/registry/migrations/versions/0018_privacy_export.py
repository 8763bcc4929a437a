"""Indexes the personal-data export reads by (issue 16, `privacy/export.py`): a person's messages by sender address.

- `ix_holding_pen_sender_email`: their messages still in the holding pen (the handlers store the address lower case
  and fitted to 320 characters, so a plain B-tree takes every value).
- `ix_thread_messages_sender_email_prefix`: their messages in any file, including files where they are no party
  (a message attached without admitting its sender). `thread_messages.sender_email` is unbounded text (migration
  0005): a plain PostgreSQL B-tree refuses an entry over ~2.7 kB, which would refuse the message. The index is on
  the first 320 characters (an address's bound); the export compares that prefix and the whole value.

Revision ID: 0018_privacy_export
Revises: 0017_privacy
Create Date: 2027-03-16
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_privacy_export"
down_revision = "0017_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_holding_pen_sender_email"), "holding_pen", ["sender_email"])
    op.create_index("ix_thread_messages_sender_email_prefix", "thread_messages",
                    [sa.text("substr(sender_email, 1, 320)")])


def downgrade() -> None:
    op.drop_index("ix_thread_messages_sender_email_prefix", table_name="thread_messages")
    op.drop_index(op.f("ix_holding_pen_sender_email"), table_name="holding_pen")
