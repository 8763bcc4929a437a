"""The citizen's personal link and the satisfaction survey (issue 17).

- `citizen_links`: the personal links to a file, as the selector of each token and the SHA-256 of its verifier
  (never a token), who issued it and whether staff revoked it; indexed by file and issue time (the "send me my link
  again" limit counts a file's recent ones).
- `survey_invitations`: one survey link per closed file, the same way (selector, hash), with whether it was
  answered (not when).
- `survey_answers`: the answers, with a random id, the year only and no file: pseudonymised from the start.

Revision ID: 0016_citizen_access
Revises: 0015_annual_report
Create Date: 2027-03-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_citizen_access"
down_revision = "0015_annual_report"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("selector", sa.String(16), nullable=False),
        sa.Column("verifier_hash", sa.String(64), nullable=False),
        sa.Column("issued_by", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_citizen_links_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_links")),
        sa.UniqueConstraint("selector", name=op.f("uq_citizen_links_selector")),
    )
    op.create_index("ix_citizen_links_complaint_issued", "citizen_links", ["complaint_id", "issued_at"])
    op.create_table(
        "survey_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("selector", sa.String(16), nullable=False),
        sa.Column("verifier_hash", sa.String(64), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_survey_invitations_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_invitations")),
        sa.UniqueConstraint("complaint_id", name=op.f("uq_survey_invitations_complaint_id")),
        sa.UniqueConstraint("selector", name=op.f("uq_survey_invitations_selector")),
    )
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("clarity", sa.Integer(), nullable=True),
        sa.Column("delay", sa.Integer(), nullable=True),
        sa.Column("respect", sa.Integer(), nullable=True),
        sa.Column("overall", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers")),
    )
    op.create_index(op.f("ix_survey_answers_year"), "survey_answers", ["year"])


def downgrade() -> None:
    op.drop_index(op.f("ix_survey_answers_year"), table_name="survey_answers")
    op.drop_table("survey_answers")
    op.drop_table("survey_invitations")
    op.drop_index("ix_citizen_links_complaint_issued", table_name="citizen_links")
    op.drop_table("citizen_links")
