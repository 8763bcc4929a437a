"""The audit trail, append-only and hash-chained (issue 13).

PLACEHOLDER: filled by the work that owns this revision (empty upgrade keeps the chain whole meanwhile).

Revision ID: 0009_audit_trail
Revises: 0008_staff_identity
Create Date: 2027-02-01
"""

from __future__ import annotations

revision = "0009_audit_trail"
down_revision = "0008_staff_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
