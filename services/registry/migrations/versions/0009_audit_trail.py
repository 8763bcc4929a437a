"""The audit trail, append-only and hash-chained (issue 13; `services.registry.access.audit`).

- `audit_trail`: one row per recorded action, `sequence` gap-free from 1, each row's `hash` the SHA-256 of its
  canonical encoding (which includes `prev_hash`, the previous row's hash);
- `audit_head`: one row (id 1), the chain's last sequence and hash, created here at (0, GENESIS). Appends lock it
  (`SELECT ... FOR UPDATE`) so that concurrent processes take turns, and it anchors the end of the chain.

Triggers, on both databases, make the tables append-only at the database itself, whatever the code does:
UPDATE and DELETE of `audit_trail` are refused (TRUNCATE too on PostgreSQL); `audit_head` is never deleted and
moves only one step forward, onto the row just appended with the previous head as its `prev_hash`. A controlled
erasure (data protection, later) would need a migration of its own that changes these triggers.

A later migration that rebuilds either table in SQLite's batch mode (copy and rename) drops its triggers with the old
table: it must create them again (`create_sqlite_triggers`).

Revision ID: 0009_audit_trail
Revises: 0008_staff_identity
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_audit_trail"
down_revision = "0008_staff_identity"
branch_labels = None
depends_on = None

GENESIS = "0" * 64  # the `prev_hash` of the first entry (`access.audit_chain.GENESIS`)

_HEAD_STEP_IS_WRONG = (
    "NEW.id <> OLD.id OR NEW.sequence <> OLD.sequence + 1 OR NOT EXISTS (SELECT 1 FROM audit_trail "
    "WHERE sequence = NEW.sequence AND hash = NEW.hash AND prev_hash = OLD.hash)"
)

SQLITE_TRIGGERS = {
    "audit_trail_no_update": "BEFORE UPDATE ON audit_trail "
                             "BEGIN SELECT RAISE(ABORT, 'audit_trail is append-only'); END",
    "audit_trail_no_delete": "BEFORE DELETE ON audit_trail "
                             "BEGIN SELECT RAISE(ABORT, 'audit_trail is append-only'); END",
    "audit_head_no_delete": "BEFORE DELETE ON audit_head "
                            "BEGIN SELECT RAISE(ABORT, 'audit_head is never deleted'); END",
    "audit_head_forward_only": f"BEFORE UPDATE ON audit_head WHEN {_HEAD_STEP_IS_WRONG} "
                               "BEGIN SELECT RAISE(ABORT, 'audit_head moves one appended entry forward only'); END",
}

POSTGRESQL_STATEMENTS = (
    """CREATE FUNCTION audit_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_trail is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    "CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail "
    "FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only()",
    "CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only()",
    f"""CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' THEN
            RAISE EXCEPTION 'audit_head: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF {_HEAD_STEP_IS_WRONG} THEN
            RAISE EXCEPTION 'audit_head moves one appended entry forward only'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$""",
    "CREATE TRIGGER audit_head_forward_only BEFORE INSERT OR UPDATE OR DELETE ON audit_head "
    "FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()",
    "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only()",
)


def create_sqlite_triggers() -> None:
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    op.create_table(
        "audit_trail",
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("roles", sa.String(120), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("number", sa.String(40), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_audit_trail"),
        sa.UniqueConstraint("hash", name="uq_audit_trail_hash"),
    )
    op.create_index("ix_audit_trail_number_sequence", "audit_trail", ["number", "sequence"])
    op.create_index("ix_audit_trail_account_id_sequence", "audit_trail", ["account_id", "sequence"])
    op.create_index("ix_audit_trail_actor_sequence", "audit_trail", ["actor", "sequence"])
    op.create_index("ix_audit_trail_at", "audit_trail", ["at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "sequence": 0, "hash": GENESIS}])
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_STATEMENTS:
            op.execute(statement)
    else:
        create_sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_head")  # its triggers go with it
        op.execute("DROP TABLE audit_trail")
        op.execute("DROP FUNCTION audit_head_forward_only()")
        op.execute("DROP FUNCTION audit_trail_append_only()")
        return
    for name in SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_trail_at", table_name="audit_trail")
    op.drop_index("ix_audit_trail_actor_sequence", table_name="audit_trail")
    op.drop_index("ix_audit_trail_account_id_sequence", table_name="audit_trail")
    op.drop_index("ix_audit_trail_number_sequence", table_name="audit_trail")
    op.drop_table("audit_trail")
