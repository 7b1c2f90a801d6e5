"""agent fixes: a creditor's service level for the back office (creditors.answer_within_days) and an
agent's one-time recovery codes (agent_recovery_codes)

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-06

The new column has a server default (one working day), so existing creditors get the default target.
Recovery codes are stored as SHA-256 digests of 80-bit random codes (shown once), each used once.
outbox_messages.sent_subject/sent_text keep what a customer was sent (tokens redacted), for the
timeline; nullable: messages sent before keep none.
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer_within_days', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_subject', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('sent_text', sa.Text(), nullable=True))

    op.create_table('agent_recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_recovery_codes_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_recovery_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_agent_recovery_codes_code_hash'))
    )
    with op.batch_alter_table('agent_recovery_codes', schema=None) as batch_op:
        batch_op.create_index('ix_agent_recovery_codes_agent_id', ['agent_id'], unique=False)


def downgrade():
    with op.batch_alter_table('agent_recovery_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_recovery_codes_agent_id')

    op.drop_table('agent_recovery_codes')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('sent_text')
        batch_op.drop_column('sent_subject')
    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.drop_column('answer_within_days')
