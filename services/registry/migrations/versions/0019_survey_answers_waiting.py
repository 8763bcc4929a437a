"""Survey answers that cannot be linked to their file by transaction id or row order (issue 16, `public/survey.py`).

- `survey_answers_waiting`: an answer is stored here, in the transaction that closes its invitation, and moved into
  `survey_answers` later, with others, in a shuffled batch by another transaction (the survey's sweep).
- The answers stored before: written in the transaction that closed their invitation, so on PostgreSQL their row's
  `xmin` was the invitation's, and their physical order (SQLite's rowid, PostgreSQL's ctid) the order of answering.
  They are written again here, in one transaction, in a random order and under new random ids; and every answered
  invitation is written again in the same transaction, so none keeps the transaction id of its answer. (The old row
  versions are PostgreSQL's dead tuples until VACUUM, as after any update: docs/privacy.md.)

Revision ID: 0019_survey_answers_waiting
Revises: 0018_privacy_export
Create Date: 2027-03-20
"""

from __future__ import annotations

import secrets
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0019_survey_answers_waiting"
down_revision = "0018_privacy_export"
branch_labels = None
depends_on = None

_SCORES = ("year", "clarity", "delay", "respect", "overall", "comment")
_answers = sa.table("survey_answers", sa.column("id", sa.String()), *(sa.column(name) for name in _SCORES))
_invitations = sa.table("survey_invitations", sa.column("answered", sa.Boolean()))


def upgrade() -> None:
    op.create_table(
        "survey_answers_waiting",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("waiting_since", sa.Date(), nullable=False),
        sa.Column("clarity", sa.Integer(), nullable=True),
        sa.Column("delay", sa.Integer(), nullable=True),
        sa.Column("respect", sa.Integer(), nullable=True),
        sa.Column("overall", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers_waiting")),
    )
    connection = op.get_bind()
    # A few thousand answers a year: read whole, written back shuffled under new ids.
    rows = [dict(row._mapping) for row in connection.execute(sa.select(*(_answers.c[name] for name in _SCORES)))]
    if rows:
        secrets.SystemRandom().shuffle(rows)
        connection.execute(sa.delete(_answers))
        connection.execute(sa.insert(_answers), [{**row, "id": uuid.uuid4().hex} for row in rows])
    connection.execute(sa.update(_invitations).where(_invitations.c.answered.is_(True)).values(answered=True))


def downgrade() -> None:
    # The answers still waiting go where the earlier schema keeps every answer.
    connection = op.get_bind()
    waiting = sa.table("survey_answers_waiting", sa.column("id", sa.String()), *(sa.column(name) for name in _SCORES))
    connection.execute(sa.insert(_answers).from_select(["id", *_SCORES], sa.select(
        waiting.c.id, *(waiting.c[name] for name in _SCORES))))
    op.drop_table("survey_answers_waiting")
