"""What the back office adds to the register: data-protection flag, notes, links, merges, saved searches (issue 13).

PLACEHOLDER: filled by the work that owns this revision (empty upgrade keeps the chain whole meanwhile).

Revision ID: 0010_backoffice_register
Revises: 0009_audit_trail
Create Date: 2027-02-01
"""

from __future__ import annotations

revision = "0010_backoffice_register"
down_revision = "0009_audit_trail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
