"""Per-recipient limits count a mailbox in a quota, not an exact address (issue 10, `services/notifier/quota.py`).

`notices.limit_key` holds "verified:victim@gmail.com" or "unverified:victim@gmail.com": the recipient's address
lower-cased, its RFC 5233 sub-address detail removed, Gmail's dots removed; and whether the sender answered was
verified. The outbox counts and locks on it.

Existing rows are filled for the last two days only (the longest counted period is 24 hours or one local day), from
their recipient, in the unverified quota (their sender's verdict was not kept): an address that was limited before
the upgrade stays limited. Older rows keep NULL: no limit counts them any more.

Revision ID: 0004_limit_key
Revises: 0003_unbounded_external_text
"""

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

from services.notifier.quota import Quota, limit_key

revision = "0004_limit_key"
down_revision = "0003_unbounded_external_text"
branch_labels = None
depends_on = None

_BACKFILL_DAYS = 2


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("limit_key", sa.String(400), nullable=True))
        batch.create_index("ix_notices_limit_key", ["limit_key"])
    notices = sa.table("notices", sa.column("id", sa.Integer()), sa.column("recipient", sa.String(320)),
                       sa.column("created_at", sa.DateTime(timezone=False)),
                       sa.column("limit_key", sa.String(400)))
    # The column stores naive UTC (models.UTCDateTime).
    since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=_BACKFILL_DAYS)
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(notices.c.id, notices.c.recipient).where(notices.c.created_at >= since, notices.c.recipient != "")
    ).all()
    for notice_id, recipient in rows:
        connection.execute(notices.update().where(notices.c.id == notice_id)
                           .values(limit_key=limit_key(recipient, Quota.UNVERIFIED)))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_index("ix_notices_limit_key")
        batch.drop_column("limit_key")
