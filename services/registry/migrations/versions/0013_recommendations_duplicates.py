"""Recommendations followed up, possible duplicates (issue 15).

- `recommendations`: one row per recommendation, tied to a file or general, addressed to an administration (the
  directory entry of 0011 when chosen from it, and always its name as written), with its follow-up status, review
  date and the stored key of the review reminder. The entries of the JSON list `complaints.recommendations` become
  rows here (status pending, dated the day the file was last updated, addressed to the file's service, request key
  `migrated:<complaint id>:<position>` so that the step can never add one twice).
- `complaints.recommendations` is kept, and keeps its texts: it is the file's list of recommendation texts that
  `register show`, the file page's fallback and the annual report's "improvement actions" read, written in the same
  transaction as each new row (`handlers/recommendations.py`). Dropping it would change the output of every past
  year's report and of the tools reading it, and SQLite would drop it only by rewriting `complaints` (batch mode),
  which loses the FTS5 triggers of 0004.
- `complaints.possible_duplicates` (JSON, the candidates' numbers) and `complaints.citizen_key` (indexed): added
  with `ALTER TABLE ... ADD COLUMN`, like 0006, 0007 and 0010. The key of the existing complaints with a name and a
  postal address is computed here in pages (the normalisation is Python's, `duplicates.citizen_key`), so that a new
  complaint finds the files registered before the upgrade; `possible_duplicates` stays NULL on those (they were
  registered before the check existed).

Revision ID: 0013_recommendations_duplicates
Revises: 0012_information_requests
Create Date: 2027-03-01
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from services.registry.mediation.duplicates import citizen_key

revision = "0013_recommendations_duplicates"
down_revision = "0012_information_requests"
branch_labels = None
depends_on = None

PAGE = 1000  # rows read and written at once by the data steps


def _complaints() -> sa.Table:
    return sa.table("complaints", sa.column("id", sa.Integer), sa.column("recommendations", sa.JSON),
                    sa.column("service_concerned", sa.String), sa.column("updated_at", sa.DateTime(timezone=True)),
                    sa.column("handler", sa.Text), sa.column("complainant_name", sa.Text),
                    sa.column("complainant_postal_address", sa.Text), sa.column("citizen_key", sa.String))


def _day(value: Any) -> date:
    """The day of a stored timestamp (SQLite hands back text, PostgreSQL a datetime)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str) and value:
        return date.fromisoformat(value[:10])
    return date(1970, 1, 1)


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value)) if value else datetime(1970, 1, 1)


def _texts(value: Any) -> list[str]:
    listed = json.loads(value) if isinstance(value, str) else value
    return [str(item) for item in listed or () if str(item).strip()] if isinstance(listed, list) else []


def _move_recommendations(recommendations: sa.Table) -> None:
    """Each entry of `complaints.recommendations` as a row, in pages of complaints (by id)."""
    bind = op.get_bind()
    complaints = _complaints()
    after = 0
    while True:
        page = bind.execute(
            sa.select(complaints.c.id, complaints.c.recommendations, complaints.c.service_concerned,
                      complaints.c.updated_at, complaints.c.handler)
            .where(complaints.c.id > after).order_by(complaints.c.id).limit(PAGE)).all()
        if not page:
            return
        rows = [{"request_key": f"migrated:{complaint_id}:{position}", "complaint_id": complaint_id,
                 "administration_id": None, "addressee": (service or "")[:300], "text": text,
                 "issued_on": _day(updated), "status": "pending", "status_reason": None, "review_date": None,
                 "reminded_for": None, "history": [], "created_by": handler or "registry",
                 "created_at": _moment(updated), "updated_at": _moment(updated)}
                for complaint_id, listed, service, updated, handler in page
                for position, text in enumerate(_texts(listed))]
        if rows:
            op.bulk_insert(recommendations, rows)
        after = page[-1][0]


def _fill_citizen_keys() -> None:
    bind = op.get_bind()
    complaints = _complaints()
    after = 0
    while True:
        page = bind.execute(
            sa.select(complaints.c.id, complaints.c.complainant_name, complaints.c.complainant_postal_address)
            .where(complaints.c.id > after, complaints.c.complainant_postal_address.is_not(None))
            .order_by(complaints.c.id).limit(PAGE)).all()
        if not page:
            return
        keyed = [{"row_id": row_id, "key": key} for row_id, name, address in page
                 if (key := citizen_key(name, address)) is not None]
        if keyed:
            bind.execute(complaints.update().where(complaints.c.id == sa.bindparam("row_id"))
                         .values(citizen_key=sa.bindparam("key")), keyed)
        after = page[-1][0]


def upgrade() -> None:
    recommendations = op.create_table(
        "recommendations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(120), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        sa.Column("administration_id", sa.Integer(), nullable=True),
        sa.Column("addressee", sa.String(300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("review_date", sa.Date(), nullable=True),
        sa.Column("reminded_for", sa.Date(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_recommendations_complaint_id_complaints")),
        sa.ForeignKeyConstraint(["administration_id"], ["administrations.id"],
                                name=op.f("fk_recommendations_administration_id_administrations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendations")),
        sa.UniqueConstraint("request_key", name=op.f("uq_recommendations_request_key")),
    )
    op.create_index(op.f("ix_recommendations_complaint_id"), "recommendations", ["complaint_id"])
    op.create_index(op.f("ix_recommendations_administration_id"), "recommendations", ["administration_id"])
    op.create_index("ix_recommendations_status_review_date", "recommendations", ["status", "review_date"])
    op.create_index("ix_recommendations_addressee", "recommendations", ["addressee"])
    op.create_index("ix_recommendations_issued_on", "recommendations", ["issued_on"])
    _move_recommendations(recommendations)

    op.add_column("complaints", sa.Column("possible_duplicates", sa.JSON(), nullable=True))
    op.add_column("complaints", sa.Column("citizen_key", sa.String(64), nullable=True))
    _fill_citizen_keys()
    op.create_index(op.f("ix_complaints_citizen_key"), "complaints", ["citizen_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_complaints_citizen_key"), table_name="complaints")
    # SQLite >= 3.35 drops a column in place (no table copy, the triggers stay).
    op.drop_column("complaints", "citizen_key")
    op.drop_column("complaints", "possible_duplicates")
    # The texts stayed in `complaints.recommendations`: dropping the rows loses only their follow-up.
    op.drop_table("recommendations")
