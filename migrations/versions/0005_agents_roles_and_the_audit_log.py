"""agents, roles and the audit log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('failed_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('session_version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('disabled_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sign_in_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('email', name=op.f('uq_agents_email'))
    )
    op.create_table('agent_roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_roles_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_agent_roles_creditor_id_creditors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_roles')),
    sa.UniqueConstraint('agent_id', 'creditor_id', name=op.f('uq_agent_roles_agent_id_creditor_id'))
    )
    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('creditor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('record_type', sa.String(length=32), nullable=True),
    sa.Column('record_id', sa.String(length=64), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_audit_entries_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_audit_entries_creditor_id_creditors'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entries_agent_id_at', ['agent_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_entries_creditor_id_at', ['creditor_id', 'at'], unique=False)



def downgrade():
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_creditor_id_at')
        batch_op.drop_index('ix_audit_entries_agent_id_at')

    op.drop_table('audit_entries')
    op.drop_table('agent_roles')
    op.drop_table('agents')
