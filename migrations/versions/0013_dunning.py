"""dunning: plans and steps, settings, notices, messages, letters, contact changes; customers'
preferences and consents, invoices' plan and next step, outbox messages' provider status

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-06

Every new column is nullable or has a server default, so existing rows stay valid: no customer has
a preferred channel, e-mail and SMS are allowed, electronic notices are not (legal notices go by
letter), no invoice has a plan (the run enrols open bills in a creditor's default plan once it has
one). The CHECKs of codes are written out, as in 0008.
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dunning_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('jurisdiction', sa.String(length=8), nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("jurisdiction IN ('NO', 'DE', 'none')", name=op.f('ck_dunning_plans_jurisdiction')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_dunning_plans_version_positive')),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_dunning_plans_creditor_id_creditors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_plans')),
    sa.UniqueConstraint('creditor_id', 'name', 'version', name=op.f('uq_dunning_plans_creditor_id_name_version'))
    )
    with op.batch_alter_table('dunning_plans', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_plans_one_default', ['creditor_id'], unique=True, sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))

    op.create_table('dunning_settings',
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('message_interval_days', sa.Integer(), server_default='3', nullable=False),
    sa.Column('quiet_from', sa.Integer(), server_default='21', nullable=False),
    sa.Column('quiet_until', sa.Integer(), server_default='8', nullable=False),
    sa.Column('consumer_default_notice', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('updated_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_dunning_settings_creditor_id_creditors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('creditor_id', name=op.f('pk_dunning_settings'))
    )
    op.create_table('contact_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=254), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('email', 'sms')", name=op.f('ck_contact_changes_kind')),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_contact_changes_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_contact_changes_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_changes'))
    )
    with op.batch_alter_table('contact_changes', schema=None) as batch_op:
        batch_op.create_index('ix_contact_changes_customer_id', ['customer_id'], unique=False)

    op.create_table('dunning_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('outbox_message_id', sa.Integer(), nullable=True),
    sa.Column('replaces_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('failure', sa.String(length=300), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("channel IN ('sms', 'email', 'letter')", name=op.f('ck_dunning_messages_channel')),
    sa.CheckConstraint("status IN ('queued', 'sent', 'delivered', 'failed', 'bounced', 'opened')", name=op.f('ck_dunning_messages_status')),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_dunning_messages_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_dunning_messages_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outbox_message_id'], ['outbox_messages.id'], name=op.f('fk_dunning_messages_outbox_message_id_outbox_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['replaces_id'], ['dunning_messages.id'], name=op.f('fk_dunning_messages_replaces_id_dunning_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_messages'))
    )
    with op.batch_alter_table('dunning_messages', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_messages_customer_id_created_at', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dunning_messages_outbox_message_id'), ['outbox_message_id'], unique=False)

    op.create_table('dunning_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('anchor', sa.String(length=12), nullable=False),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('deadline_days', sa.Integer(), nullable=False),
    sa.Column('starts_hand_off', sa.Boolean(), nullable=False),
    sa.Column('adds_interest', sa.Boolean(), nullable=False),
    sa.Column('flat_fee', sa.Boolean(), nullable=False),
    sa.Column('texts', sa.JSON(), nullable=False),
    sa.CheckConstraint("anchor IN ('due_date', 'previous')", name=op.f('ck_dunning_steps_anchor')),
    sa.CheckConstraint("kind IN ('pre_due', 'reminder', 'final_reminder', 'collection_warning')", name=op.f('ck_dunning_steps_kind')),
    sa.CheckConstraint('deadline_days >= 0', name=op.f('ck_dunning_steps_deadline_not_negative')),
    sa.CheckConstraint('fee >= 0', name=op.f('ck_dunning_steps_fee_not_negative')),
    sa.ForeignKeyConstraint(['plan_id'], ['dunning_plans.id'], name=op.f('fk_dunning_steps_plan_id_dunning_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_steps')),
    sa.UniqueConstraint('plan_id', 'position', name=op.f('uq_dunning_steps_plan_id_position'))
    )
    op.create_table('dunning_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('channel_index', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('sent_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('interest', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("channel IN ('sms', 'email', 'letter')", name=op.f('ck_dunning_notices_channel')),
    sa.CheckConstraint("kind IN ('pre_due', 'reminder', 'final_reminder', 'collection_warning')", name=op.f('ck_dunning_notices_kind')),
    sa.CheckConstraint("status IN ('sent', 'delivered', 'opened', 'failed', 'bounced', 'skipped', 'paid_before')", name=op.f('ck_dunning_notices_status')),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_dunning_notices_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_dunning_notices_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_dunning_notices_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['dunning_messages.id'], name=op.f('fk_dunning_notices_message_id_dunning_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['plan_id'], ['dunning_plans.id'], name=op.f('fk_dunning_notices_plan_id_dunning_plans'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['step_id'], ['dunning_steps.id'], name=op.f('fk_dunning_notices_step_id_dunning_steps'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_notices')),
    sa.UniqueConstraint('invoice_id', 'plan_id', 'position', name=op.f('uq_dunning_notices_invoice_id_plan_id_position'))
    )
    with op.batch_alter_table('dunning_notices', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_notices_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_dunning_notices_message_id', ['message_id'], unique=False)

    op.create_table('letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('address', sa.JSON(), nullable=False),
    sa.Column('batch', sa.Date(), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('printed_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'printed')", name=op.f('ck_letters_status')),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_letters_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_letters_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['dunning_messages.id'], name=op.f('fk_letters_message_id_dunning_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letters')),
    sa.UniqueConstraint('message_id', name=op.f('uq_letters_message_id'))
    )
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.create_index('ix_letters_status_creditor_id', ['status', 'creditor_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preferred_channel', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('email_allowed', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('sms_allowed', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('electronic_notices_allowed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('email_unsubscribed_at', app.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sms_stopped_at', app.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('dunning_excluded', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('time_zone', sa.String(length=40), nullable=True))
        batch_op.create_check_constraint(op.f('ck_customers_preferred_channel'),
                                         "preferred_channel IN ('sms', 'email', 'letter')")

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dunning_plan_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('dunning_excluded', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('dunning_next_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('dunning_next_position', sa.Integer(), nullable=True))
        batch_op.create_index('ix_invoices_dunning_next_on', ['creditor_id', 'dunning_next_on', 'customer_id'], unique=False, postgresql_where=sa.text('dunning_next_on IS NOT NULL'), sqlite_where=sa.text('dunning_next_on IS NOT NULL'))
        batch_op.create_index('ix_invoices_dunning_unplanned', ['creditor_id'], unique=False, postgresql_where=sa.text("dunning_plan_id IS NULL AND NOT dunning_excluded AND status IN ('open', 'partially_paid')"), sqlite_where=sa.text("dunning_plan_id IS NULL AND NOT dunning_excluded AND status IN ('open', 'partially_paid')"))
        batch_op.create_foreign_key(batch_op.f('fk_invoices_dunning_plan_id_dunning_plans'), 'dunning_plans', ['dunning_plan_id'], ['id'], ondelete='RESTRICT')

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_ref', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('provider_status', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('provider_status_at', app.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_messages_provider_ref'), ['provider_ref'], unique=False)



def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_messages_provider_ref'))
        batch_op.drop_column('provider_status_at')
        batch_op.drop_column('provider_status')
        batch_op.drop_column('provider_ref')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_dunning_plan_id_dunning_plans'), type_='foreignkey')
        batch_op.drop_index('ix_invoices_dunning_unplanned', postgresql_where=sa.text("dunning_plan_id IS NULL AND NOT dunning_excluded AND status IN ('open', 'partially_paid')"), sqlite_where=sa.text("dunning_plan_id IS NULL AND NOT dunning_excluded AND status IN ('open', 'partially_paid')"))
        batch_op.drop_index('ix_invoices_dunning_next_on', postgresql_where=sa.text('dunning_next_on IS NOT NULL'), sqlite_where=sa.text('dunning_next_on IS NOT NULL'))
        batch_op.drop_column('dunning_next_position')
        batch_op.drop_column('dunning_next_on')
        batch_op.drop_column('dunning_excluded')
        batch_op.drop_column('dunning_plan_id')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_customers_preferred_channel'), type_='check')
        batch_op.drop_column('time_zone')
        batch_op.drop_column('dunning_excluded')
        batch_op.drop_column('sms_stopped_at')
        batch_op.drop_column('email_unsubscribed_at')
        batch_op.drop_column('electronic_notices_allowed')
        batch_op.drop_column('sms_allowed')
        batch_op.drop_column('email_allowed')
        batch_op.drop_column('preferred_channel')

    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.drop_index('ix_letters_status_creditor_id')

    op.drop_table('letters')
    with op.batch_alter_table('dunning_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_notices_message_id')
        batch_op.drop_index('ix_dunning_notices_customer_id')

    op.drop_table('dunning_notices')
    op.drop_table('dunning_steps')
    with op.batch_alter_table('dunning_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dunning_messages_outbox_message_id'))
        batch_op.drop_index('ix_dunning_messages_customer_id_created_at')

    op.drop_table('dunning_messages')
    with op.batch_alter_table('contact_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_changes_customer_id')

    op.drop_table('contact_changes')
    op.drop_table('dunning_settings')
    with op.batch_alter_table('dunning_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_plans_one_default', sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))

    op.drop_table('dunning_plans')
