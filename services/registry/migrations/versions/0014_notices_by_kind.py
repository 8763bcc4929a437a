"""Notices by kind and data-protection routing (issue 15).

Reserved revision: filled in by the work on issue 15 (an empty step until then).

Revision ID: 0014_notices_by_kind
Revises: 0013_recommendations_duplicates
Create Date: 2027-03-01
"""

from __future__ import annotations

revision = "0014_notices_by_kind"
down_revision = "0013_recommendations_duplicates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
