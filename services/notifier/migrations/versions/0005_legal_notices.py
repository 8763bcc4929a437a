"""Versioned legal notices and kind-specific acknowledgments (issue 15): with each notice, the template it was
rendered from and the id of the jurisdiction's legal-notice version it carried.

The rendered mail itself (subject, text, HTML, PDF letter) was already kept in the outbox; these two columns say
which text of the law it stated, so that an old notice can be explained and rendered again as it was sent. Existing
rows keep NULL: what they carried is their stored text (the Belgian sentence shipped until then).

Revision ID: 0005_legal_notices
Revises: 0004_limit_key
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_legal_notices"
down_revision = "0004_limit_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no table rebuild on SQLite, no rewrite on PostgreSQL.
    op.add_column("notices", sa.Column("template", sa.String(80), nullable=True))
    op.add_column("notices", sa.Column("legal_notice_version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("legal_notice_version")
        batch.drop_column("template")
