"""What the back office adds to the register: data-protection flag, notes, links, merges, saved searches (issue 13).

- `complaints.data_protection` (NOT NULL, default false), filled for existing rows from the screening proposal's
  `route_to_dpo`; `complaints.merged_into` (the number of the file a merged one lives on in). Both added with
  `ALTER TABLE ... ADD COLUMN`, like 0006 and 0007: no table copy (SQLite's batch mode would drop the FTS5 triggers
  of 0004).
- `complaint_notes`: internal notes in a table of their own rather than thread entries with a "note" direction:
  every reader of the thread (Message-ID matching of replies, the References of our notices, the file's export)
  would otherwise have to learn to skip them, and one that forgot would leak a note to a citizen.
- `complaint_links`, `complaint_merges`, `saved_searches`.
- Indexes for the back office's list on a register of 1,000,000 complaints. The list is read newest first
  (`year`, `sequence`) with a LIMIT; an index that starts with the filtered column and continues with the list's
  order answers a filter by a seek and reads no more rows than the page, with no sort, on both databases (the
  pattern of 0002/0003): handler (also "unassigned", IS NULL), channel (phone and counter entries are rare), theme,
  admissibility ("screening pending" is rare on an old register) and data_protection: a DPO's list is
  `data_protection = true`, a small share of the register that a scan in list order would look for through every
  row. Staff's lists exclude those files (`NOT data_protection`): that keeps nearly every row, so the existing
  indexes of the other filters (status, service...) stay the right ones, and the repository writes that condition
  so that it does not tempt SQLite's planner onto this index. A status filter of a DPO is answered by the
  data_protection index (few rows) and a status filter of others by the status index: no (data_protection, status,
  ...) index is needed. `received_at`: the list sorted by the date received. No index for the sender verdict: its
  three values each cover a large share of the register, so a scan in list order finds a page at once.

Revision ID: 0010_backoffice_register
Revises: 0009_audit_trail
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_backoffice_register"
down_revision = "0009_audit_trail"
branch_labels = None
depends_on = None

# name -> columns, all on `complaints`
LIST_INDEXES = {
    "ix_complaints_handler_year_sequence": ["handler", "year", "sequence"],
    "ix_complaints_channel_year_sequence": ["channel", "year", "sequence"],
    "ix_complaints_theme_year_sequence": ["theme", "year", "sequence"],
    "ix_complaints_admissibility_year_sequence": ["admissibility", "year", "sequence"],
    "ix_complaints_data_protection_year_sequence": ["data_protection", "year", "sequence"],
    "ix_complaints_received_at": ["received_at"],
}


def _backfill_data_protection() -> None:
    """Screening proposed routing to the DPO: the file is a data-protection complaint (the JSON read per dialect)."""
    if op.get_bind().dialect.name == "postgresql":
        route_to_dpo = "(screening_proposal ->> 'route_to_dpo') = 'true'"
    else:
        route_to_dpo = "json_extract(screening_proposal, '$.route_to_dpo') = 1"
    op.execute(f"UPDATE complaints SET data_protection = true WHERE screening_proposal IS NOT NULL "
               f"AND {route_to_dpo}")


def upgrade() -> None:
    op.add_column("complaints", sa.Column("data_protection", sa.Boolean(), nullable=False,
                                          server_default=sa.false()))
    op.add_column("complaints", sa.Column("merged_into", sa.String(40), nullable=True))
    _backfill_data_protection()
    for name, columns in LIST_INDEXES.items():
        op.create_index(name, "complaints", columns)

    op.create_table(
        "complaint_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(120), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_complaint_notes_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_notes")),
        sa.UniqueConstraint("request_key", name=op.f("uq_complaint_notes_request_key")),
    )
    op.create_index(op.f("ix_complaint_notes_complaint_id"), "complaint_notes", ["complaint_id"])

    op.create_table(
        "complaint_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("second_id", sa.Integer(), nullable=False),
        sa.Column("linked_by", sa.Text(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["first_id"], ["complaints.id"], name=op.f("fk_complaint_links_first_id_complaints")),
        sa.ForeignKeyConstraint(["second_id"], ["complaints.id"],
                                name=op.f("fk_complaint_links_second_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_links")),
        sa.UniqueConstraint("first_id", "second_id", name="uq_complaint_links_pair"),
    )
    op.create_index(op.f("ix_complaint_links_second_id"), "complaint_links", ["second_id"])

    op.create_table(
        "complaint_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("moved_message_ids", sa.JSON(), nullable=False),
        sa.Column("added_party_ids", sa.JSON(), nullable=False),
        sa.Column("previous_status", sa.String(32), nullable=False),
        sa.Column("previous_closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["source_id"], ["complaints.id"],
                                name=op.f("fk_complaint_merges_source_id_complaints")),
        sa.ForeignKeyConstraint(["target_id"], ["complaints.id"],
                                name=op.f("fk_complaint_merges_target_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_merges")),
    )
    op.create_index(op.f("ix_complaint_merges_source_id"), "complaint_merges", ["source_id"])
    op.create_index(op.f("ix_complaint_merges_target_id"), "complaint_merges", ["target_id"])

    op.create_table(
        "saved_searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_searches")),
    )
    op.create_index(op.f("ix_saved_searches_owner_account_id"), "saved_searches", ["owner_account_id"])
    op.create_index(op.f("ix_saved_searches_shared"), "saved_searches", ["shared"])


def downgrade() -> None:
    op.drop_index(op.f("ix_saved_searches_shared"), table_name="saved_searches")
    op.drop_index(op.f("ix_saved_searches_owner_account_id"), table_name="saved_searches")
    op.drop_table("saved_searches")
    op.drop_index(op.f("ix_complaint_merges_target_id"), table_name="complaint_merges")
    op.drop_index(op.f("ix_complaint_merges_source_id"), table_name="complaint_merges")
    op.drop_table("complaint_merges")
    op.drop_index(op.f("ix_complaint_links_second_id"), table_name="complaint_links")
    op.drop_table("complaint_links")
    op.drop_index(op.f("ix_complaint_notes_complaint_id"), table_name="complaint_notes")
    op.drop_table("complaint_notes")
    for name in reversed(LIST_INDEXES):
        op.drop_index(name, table_name="complaints")
    # SQLite >= 3.35 drops a column in place (no table copy, the triggers stay).
    op.drop_column("complaints", "merged_into")
    op.drop_column("complaints", "data_protection")
