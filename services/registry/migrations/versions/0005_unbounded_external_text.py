"""Unbounded text for every column filled from outside (mail headers, letters, staff input).

A mail with a dozen To/Cc addresses (the thread's `recipient` joins them) or a From display name of a few hundred
characters overflowed a VARCHAR on PostgreSQL; the error is not a unique-key race, so the event was retried, then
dead-lettered: a complaint never registered. SQLite never enforced those lengths. Columns that carry an index keep
a bound (a PostgreSQL B-tree entry must stay under ~2.7 kB) and the handlers fit their values into it
(`handlers.fit`): complainant and party email, Message-ID.

SQLite cannot change a column's type in place: batch mode copies each table. Two things need care there:
- `PRAGMA foreign_keys` cannot be switched off inside the migrating transaction, and dropping the old `complaints`
  would orphan every thread message, party and log entry. So the rows are set aside in a temporary table and
  deleted first, with the foreign keys deferred to the commit; batch mode then copies an empty table; the rows
  go back in afterwards, which settles the deferred checks (SQLite counts a deferred violation down when the
  missing parent row appears).
- copying `complaints` drops its triggers (the FTS5 search of migration 0004): they are read from the schema first
  and created again before the rows go back in, so the search index stays whole.

Revision ID: 0005_unbounded_external_text
Revises: 0004_sqlite_text_search
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_unbounded_external_text"
down_revision = "0004_sqlite_text_search"
branch_labels = None
depends_on = None

# table -> (column, former VARCHAR length)
WIDENED: dict[str, tuple[tuple[str, int], ...]] = {
    "complaints": (("complainant_name", 300), ("complainant_language", 16), ("raw_object", 512), ("theme", 200),
                   ("handler", 320), ("redirected_to", 200)),
    "thread_messages": (("sender_name", 300), ("sender_email", 320), ("recipient", 320), ("notice_kind", 64),
                        ("raw_object", 512)),
    "case_parties": (("added_by", 320),),
    "change_log": (("actor", 320),),
    "holding_pen": (("sender_email", 320), ("resolved_by", 320)),
}


PARENT = "complaints"  # the one table others refer to
SET_ASIDE = "temp.registry_0005_complaints"


def _retype(to_text: bool) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    triggers: list[str] = []
    if sqlite:
        bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        triggers = [row[0] for row in bind.exec_driver_sql(
            f"SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{PARENT}'")]
        bind.exec_driver_sql(f"CREATE TABLE {SET_ASIDE} AS SELECT * FROM {PARENT}")
        bind.exec_driver_sql(f"DELETE FROM {PARENT}")
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column, length in columns:
                if to_text:
                    batch.alter_column(column, existing_type=sa.String(length), type_=sa.Text())
                else:  # values that grew meanwhile are cut, not refused (PostgreSQL would refuse them)
                    batch.alter_column(column, existing_type=sa.Text(), type_=sa.String(length),
                                       postgresql_using=f"left({column}, {length})")
    if sqlite:
        for sql in triggers:
            bind.exec_driver_sql(sql)
        names = ", ".join(f'"{row[1]}"' for row in bind.exec_driver_sql(f"PRAGMA table_info({PARENT})"))
        bind.exec_driver_sql(f"INSERT INTO {PARENT} ({names}) SELECT {names} FROM {SET_ASIDE}")
        bind.exec_driver_sql(f"DROP TABLE {SET_ASIDE}")


def upgrade() -> None:
    _retype(to_text=True)


def downgrade() -> None:
    _retype(to_text=False)
