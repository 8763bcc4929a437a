"""Notices that can no longer go out keep no personal link (`citizen_link.redacted`): from this version the outbox
removes a citizen's personal or survey link from a notice once it is sent, failed for good, printed or recorded as
never to go out. This migration does the same, once, for the notices recorded before: their stored text and HTML get
the placeholder in place of the link, and a printed or never-printed letter that carried one loses its PDF. Notices
still to go out (pending, sending, queued) keep theirs: a retry or the print queue sends what is stored.

Nothing to undo: the links removed are not kept anywhere (that is the point), so the downgrade changes nothing.

Revision ID: 0006_settled_without_links
Revises: 0005_legal_notices
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.notifier.citizen_link import redacted

revision = "0006_settled_without_links"
down_revision = "0005_legal_notices"
branch_labels = None
depends_on = None

# Statuses as `models.NoticeStatus` spells them at this version (a migration does not follow later renames).
_SETTLED = ("sent", "failed", "suppressed", "printed")
_BATCH = 500


def upgrade() -> None:
    notices = sa.table("notices", sa.column("id", sa.Integer()), sa.column("status", sa.String(16)),
                       sa.column("language", sa.String(5)), sa.column("body_text", sa.Text()),
                       sa.column("body_html", sa.Text()), sa.column("letter_pdf", sa.LargeBinary()))
    connection = op.get_bind()
    # One pass over the table to find the candidates (a link's path is in the text of every notice carrying one),
    # then each candidate read and written by its key, a batch at a time (a letter's PDF is not read for the others).
    candidates = list(connection.execute(sa.select(notices.c.id).where(
        notices.c.status.in_(_SETTLED),
        sa.or_(notices.c.body_text.like("%my-file/%"), notices.c.body_text.like("%survey/%")))).scalars())
    for start in range(0, len(candidates), _BATCH):
        rows = connection.execute(sa.select(notices.c.id, notices.c.body_text, notices.c.body_html,
                                            notices.c.language, notices.c.letter_pdf)
                                  .where(notices.c.id.in_(candidates[start:start + _BATCH]))).all()
        for notice_id, body_text, body_html, language, letter_pdf in rows:
            columns = redacted(body_text, body_html, language, letter_pdf)
            if columns:
                connection.execute(notices.update().where(notices.c.id == notice_id).values(**columns))


def downgrade() -> None:
    """Nothing: the links removed are kept nowhere."""
