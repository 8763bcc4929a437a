"""Initial register: numbers, complaints, threads, parties, change log, holding pen, outbox, deadline alerts.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('complaints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('message_key', sa.String(length=512), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('legal_start', sa.Date(), nullable=False),
    sa.Column('complainant_name', sa.String(length=300), nullable=False),
    sa.Column('complainant_email', sa.String(length=320), nullable=True),
    sa.Column('complainant_postal_address', sa.Text(), nullable=True),
    sa.Column('complainant_language', sa.String(length=16), nullable=True),
    sa.Column('subject_line', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('raw_object', sa.String(length=512), nullable=True),
    sa.Column('service_concerned', sa.String(length=200), nullable=True),
    sa.Column('theme', sa.String(length=200), nullable=True),
    sa.Column('admissibility', sa.String(length=32), nullable=False),
    sa.Column('admissibility_reasons', sa.JSON(), nullable=False),
    sa.Column('screening_proposal', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('handler', sa.String(length=320), nullable=True),
    sa.Column('acknowledgment_due', sa.Date(), nullable=False),
    sa.Column('answer_due', sa.Date(), nullable=False),
    sa.Column('answer_extended', sa.Boolean(), nullable=False),
    sa.Column('paused_days', sa.Integer(), nullable=False),
    sa.Column('paused_since', sa.Date(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('outcome_category', sa.String(length=64), nullable=True),
    sa.Column('recommendations', sa.JSON(), nullable=False),
    sa.Column('linked_number', sa.String(length=40), nullable=True),
    sa.Column('redirected_to', sa.String(length=200), nullable=True),
    sa.Column('automated', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaints')),
    sa.UniqueConstraint('message_key', name=op.f('uq_complaints_message_key')),
    sa.UniqueConstraint('number', name=op.f('uq_complaints_number')),
    sa.UniqueConstraint('year', 'sequence', name='uq_complaints_year_sequence')
    )
    op.create_index(op.f('ix_complaints_complainant_email'), 'complaints', ['complainant_email'], unique=False)
    op.create_index(op.f('ix_complaints_kind'), 'complaints', ['kind'], unique=False)
    op.create_index(op.f('ix_complaints_legal_start'), 'complaints', ['legal_start'], unique=False)
    op.create_index(op.f('ix_complaints_service_concerned'), 'complaints', ['service_concerned'], unique=False)
    op.create_index('ix_complaints_status_answer_due', 'complaints', ['status', 'answer_due'], unique=False)
    op.create_table('holding_pen',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_key', sa.String(length=512), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('suggestions', sa.JSON(), nullable=False),
    sa.Column('event', sa.Text(), nullable=False),
    sa.Column('sender_email', sa.String(length=320), nullable=True),
    sa.Column('subject_line', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolved_by', sa.String(length=320), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_number', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holding_pen')),
    sa.UniqueConstraint('message_key', name=op.f('uq_holding_pen_message_key'))
    )
    op.create_index(op.f('ix_holding_pen_status'), 'holding_pen', ['status'], unique=False)
    op.create_table('number_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_number_counters'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedup_id', sa.String(length=600), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('dedup_id', name=op.f('uq_outbox_dedup_id'))
    )
    op.create_index(op.f('ix_outbox_published_at'), 'outbox', ['published_at'], unique=False)
    op.create_table('case_parties',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('added_by', sa.String(length=320), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_case_parties_complaint_id_complaints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_parties')),
    sa.UniqueConstraint('complaint_id', 'email', name='uq_case_parties_complaint_email')
    )
    op.create_index(op.f('ix_case_parties_email'), 'case_parties', ['email'], unique=False)
    op.create_table('change_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.String(length=64), nullable=False),
    sa.Column('change', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_change_log_complaint_id_complaints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_log')),
    sa.UniqueConstraint('change_id', name=op.f('uq_change_log_change_id'))
    )
    op.create_index(op.f('ix_change_log_complaint_id'), 'change_log', ['complaint_id'], unique=False)
    op.create_table('deadline_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('alert_key', sa.String(length=120), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_deadline_alerts_complaint_id_complaints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deadline_alerts')),
    sa.UniqueConstraint('complaint_id', 'alert_key', name='uq_deadline_alerts_complaint_key')
    )
    op.create_table('thread_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('message_key', sa.String(length=512), nullable=False),
    sa.Column('message_id', sa.String(length=998), nullable=True),
    sa.Column('sender_name', sa.String(length=300), nullable=False),
    sa.Column('sender_email', sa.String(length=320), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('subject_line', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('notice_kind', sa.String(length=64), nullable=True),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('raw_object', sa.String(length=512), nullable=True),
    sa.Column('automated', sa.Boolean(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_thread_messages_complaint_id_complaints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thread_messages')),
    sa.UniqueConstraint('message_key', name=op.f('uq_thread_messages_message_key'))
    )
    op.create_index(op.f('ix_thread_messages_complaint_id'), 'thread_messages', ['complaint_id'], unique=False)
    op.create_index(op.f('ix_thread_messages_message_id'), 'thread_messages', ['message_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_thread_messages_message_id'), table_name='thread_messages')
    op.drop_index(op.f('ix_thread_messages_complaint_id'), table_name='thread_messages')
    op.drop_table('thread_messages')
    op.drop_table('deadline_alerts')
    op.drop_index(op.f('ix_change_log_complaint_id'), table_name='change_log')
    op.drop_table('change_log')
    op.drop_index(op.f('ix_case_parties_email'), table_name='case_parties')
    op.drop_table('case_parties')
    op.drop_index(op.f('ix_outbox_published_at'), table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('number_counters')
    op.drop_index(op.f('ix_holding_pen_status'), table_name='holding_pen')
    op.drop_table('holding_pen')
    op.drop_index('ix_complaints_status_answer_due', table_name='complaints')
    op.drop_index(op.f('ix_complaints_service_concerned'), table_name='complaints')
    op.drop_index(op.f('ix_complaints_legal_start'), table_name='complaints')
    op.drop_index(op.f('ix_complaints_kind'), table_name='complaints')
    op.drop_index(op.f('ix_complaints_complainant_email'), table_name='complaints')
    op.drop_table('complaints')
