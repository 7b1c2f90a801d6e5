"""privacy: a creditor's retention period, and the marks the retention run leaves

Revision ID: 0024
Revises: 0027
Create Date: 2026-12-06

Two new tables; nothing else changes. docs/privacy.md.
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'privacy_settings',
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('retention_months', sa.Integer(), nullable=False),
        sa.Column('updated_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('retention_months >= 1', name=op.f('ck_privacy_settings_retention_positive')),
        sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_privacy_settings_creditor_id_creditors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('creditor_id', name=op.f('pk_privacy_settings')),
    )
    op.create_table(
        'privacy_marks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('until', sa.Date(), nullable=True),
        sa.Column('at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('invoice_minimised', 'customer_minimised', 'customer_anonymised')",
                           name=op.f('ck_privacy_marks_kind')),
        sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_privacy_marks_creditor_id_creditors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_marks')),
        sa.UniqueConstraint('kind', 'record_id', name=op.f('uq_privacy_marks_kind_record_id')),
    )
    with op.batch_alter_table('privacy_marks', schema=None) as batch_op:
        batch_op.create_index('ix_privacy_marks_creditor_id', ['creditor_id'], unique=False)


def downgrade():
    with op.batch_alter_table('privacy_marks', schema=None) as batch_op:
        batch_op.drop_index('ix_privacy_marks_creditor_id')
    op.drop_table('privacy_marks')
    op.drop_table('privacy_settings')
