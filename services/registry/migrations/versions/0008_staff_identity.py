"""Staff accounts, sessions, API tokens, one-time links, login throttling (issue 13).

PLACEHOLDER: filled by the work that owns this revision (empty upgrade keeps the chain whole meanwhile).

Revision ID: 0008_staff_identity
Revises: 0007_facts_and_rules
Create Date: 2027-02-01
"""

from __future__ import annotations

revision = "0008_staff_identity"
down_revision = "0007_facts_and_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
