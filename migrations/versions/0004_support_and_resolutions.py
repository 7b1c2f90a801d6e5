"""support requests, messages and attachments; resolutions (disputes, promises, deferrals, plans) and instalments; creditors' self-service rules

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_ref', sa.String(length=24), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('mime', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_attachments_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_attachments_invoice_id_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments')),
    sa.UniqueConstraint('public_ref', name=op.f('uq_attachments_public_ref')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_attachments_storage_key'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index('ix_attachments_invoice_id', ['invoice_id'], unique=False)

    op.create_table('support_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('contact_method', sa.String(length=8), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=True),
    sa.Column('contact_phone', sa.String(length=32), nullable=True),
    sa.Column('callback_date', sa.Date(), nullable=True),
    sa.Column('callback_window', sa.String(length=12), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('submission_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_support_requests_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_support_requests_invoice_id_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_requests')),
    sa.UniqueConstraint('invoice_id', 'submission_key', name=op.f('uq_support_requests_invoice_id_submission_key')),
    sa.UniqueConstraint('reference', name=op.f('uq_support_requests_reference'))
    )
    with op.batch_alter_table('support_requests', schema=None) as batch_op:
        batch_op.create_index('ix_support_requests_creditor_status', ['creditor_id', 'status'], unique=False)
        batch_op.create_index('ix_support_requests_invoice_id', ['invoice_id'], unique=False)

    op.create_table('resolutions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('attachment_id', sa.Integer(), nullable=True),
    sa.Column('line_ids', sa.JSON(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('fee', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('interest', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('paid_before', sa.BigInteger(), nullable=True),
    sa.Column('old_date', sa.Date(), nullable=True),
    sa.Column('new_date', sa.Date(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_by', sa.String(length=64), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('submission_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachments.id'], name=op.f('fk_resolutions_attachment_id_attachments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_resolutions_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_resolutions_invoice_id_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resolutions')),
    sa.UniqueConstraint('invoice_id', 'submission_key', name=op.f('uq_resolutions_invoice_id_submission_key')),
    sa.UniqueConstraint('reference', name=op.f('uq_resolutions_reference'))
    )
    with op.batch_alter_table('resolutions', schema=None) as batch_op:
        batch_op.create_index('ix_resolutions_creditor_status', ['creditor_id', 'status'], unique=False)
        batch_op.create_index('ix_resolutions_invoice_status', ['invoice_id', 'status'], unique=False)

    op.create_table('support_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=8), nullable=False),
    sa.Column('author_name', sa.String(length=100), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=True),
    sa.Column('submission_key', sa.String(length=64), nullable=True),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachments.id'], name=op.f('fk_support_messages_attachment_id_attachments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['support_requests.id'], name=op.f('fk_support_messages_request_id_support_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_messages')),
    sa.UniqueConstraint('request_id', 'submission_key', name=op.f('uq_support_messages_request_id_submission_key'))
    )
    with op.batch_alter_table('support_messages', schema=None) as batch_op:
        batch_op.create_index('ix_support_messages_request_id', ['request_id'], unique=False)

    op.create_table('instalments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['resolutions.id'], name=op.f('fk_instalments_plan_id_resolutions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instalments')),
    sa.UniqueConstraint('plan_id', 'seq', name=op.f('uq_instalments_plan_id_seq'))
    )
    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispute_partial_payable', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('promise_max_days', sa.Integer(), server_default='14', nullable=False))
        batch_op.add_column(sa.Column('grace_days', sa.Integer(), server_default='3', nullable=False))
        batch_op.add_column(sa.Column('deferral_max_days', sa.Integer(), server_default='14', nullable=False))
        batch_op.add_column(sa.Column('deferral_max_count', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('deferral_fee', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('plan_max_months', sa.Integer(), server_default='6', nullable=False))
        batch_op.add_column(sa.Column('plan_min_instalment', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('plan_fee', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('plan_interest_bp', sa.Integer(), server_default='0', nullable=False))



def downgrade():
    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.drop_column('plan_interest_bp')
        batch_op.drop_column('plan_fee')
        batch_op.drop_column('plan_min_instalment')
        batch_op.drop_column('plan_max_months')
        batch_op.drop_column('deferral_fee')
        batch_op.drop_column('deferral_max_count')
        batch_op.drop_column('deferral_max_days')
        batch_op.drop_column('grace_days')
        batch_op.drop_column('promise_max_days')
        batch_op.drop_column('dispute_partial_payable')

    op.drop_table('instalments')
    with op.batch_alter_table('support_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_support_messages_request_id')

    op.drop_table('support_messages')
    with op.batch_alter_table('resolutions', schema=None) as batch_op:
        batch_op.drop_index('ix_resolutions_invoice_status')
        batch_op.drop_index('ix_resolutions_creditor_status')

    op.drop_table('resolutions')
    with op.batch_alter_table('support_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_support_requests_invoice_id')
        batch_op.drop_index('ix_support_requests_creditor_status')

    op.drop_table('support_requests')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_attachments_invoice_id')

    op.drop_table('attachments')
