"""Text search and annual indicators on a large SQLite register (bench/registry, issue 4: p95 < 50 ms, < 2 s).

- `ix_complaints_acknowledgment_due` (both databases): the annual indicators count the acknowledgments falling due
  in the year;
- SQLite only (3.35 or later: trigram tokenizer, and the MATERIALIZED CTE the search uses): `complaints_fts`, an
  FTS5 table with the trigram tokenizer over the three columns the staff search looks into (subject, complainant
  name, complainant email), an external-content index of `complaints` kept up to date by triggers, filled here
  from the existing rows. The repository uses it to find the
  candidates of a rare fragment, then applies the same `LIKE` as before, so the results do not change.
  PostgreSQL has its trigram (pg_trgm) indexes since 0002: nothing to do there. Without FTS5 or trigram support the
  search keeps working, by a scan.

A later migration that rebuilds `complaints` in batch mode (SQLite's copy-and-rename) drops these triggers with the
old table: it must create them again (`create_triggers`).

Revision ID: 0004_sqlite_text_search
Revises: 0003_service_list_index
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0004_sqlite_text_search"
down_revision = "0003_service_list_index"
branch_labels = None
depends_on = None

FTS_TABLE = "complaints_fts"
COLUMNS = "subject_line, complainant_name, complainant_email"
INSERT_NEW = f"INSERT INTO {FTS_TABLE}(rowid, {COLUMNS}) " \
             f"VALUES (new.id, new.subject_line, new.complainant_name, new.complainant_email);"
DELETE_OLD = f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {COLUMNS}) " \
             f"VALUES ('delete', old.id, old.subject_line, old.complainant_name, old.complainant_email);"
TRIGGERS = {
    "complaints_fts_insert": f"AFTER INSERT ON complaints BEGIN {INSERT_NEW} END",
    "complaints_fts_delete": f"AFTER DELETE ON complaints BEGIN {DELETE_OLD} END",
    # Only when a searched column changes: status changes and the like leave the index alone.
    "complaints_fts_update": f"AFTER UPDATE OF {COLUMNS} ON complaints BEGIN {DELETE_OLD} {INSERT_NEW} END",
}


def _trigram_fts_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return False
    version = bind.exec_driver_sql("SELECT sqlite_version()").scalar_one()
    fts5 = bind.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar_one()
    return bool(fts5) and tuple(int(part) for part in version.split(".")[:2]) >= (3, 35)


def create_triggers() -> None:
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    op.create_index(op.f("ix_complaints_acknowledgment_due"), "complaints", ["acknowledgment_due"])
    if _trigram_fts_available():
        op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5({COLUMNS}, content='complaints', "
                   f"content_rowid='id', tokenize='trigram')")
        create_triggers()
        op.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.drop_index(op.f("ix_complaints_acknowledgment_due"), table_name="complaints")
