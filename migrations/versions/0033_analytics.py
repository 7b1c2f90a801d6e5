"""analytics: payments attributed to reminders, and the funnel's weekly rollups

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06

Six new tables (docs/analytics.md: the attribution, four rollups, the clarity answers) and two indexes the rollup run reads whole weeks by: a creditor's
messages by their time, a creditor's bills by their due date.
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

DIMENSIONS = ('creditor_id', 'week', 'channel', 'position', 'plan_id', 'locale', 'variant')


def _creditor_fk(table):
    return sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f(f'fk_{table}_creditor_id_creditors'),
                                   ondelete='CASCADE')


def _dimensions():
    return [
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('week', sa.Date(), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        sa.Column('locale', sa.String(length=8), nullable=False),
        sa.Column('variant', sa.String(length=40), nullable=False),
    ]


def upgrade():
    op.create_table(
        'analytics_attributions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('opened_at', app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('window_days', sa.Integer(), nullable=False),
        sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'],
                                name=op.f('fk_analytics_attributions_payment_id_payments'), ondelete='CASCADE'),
        _creditor_fk('analytics_attributions'),
        sa.ForeignKeyConstraint(['message_id'], ['dunning_messages.id'],
                                name=op.f('fk_analytics_attributions_message_id_dunning_messages'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_attributions')),
        sa.UniqueConstraint('payment_id', name=op.f('uq_analytics_attributions_payment_id')),
    )
    op.create_index('ix_analytics_attributions_message_id', 'analytics_attributions', ['message_id'])
    op.create_table(
        'analytics_funnel_weeks',
        *_dimensions(),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in ('sent', 'delivered', 'opened', 'failed', 'paid')],
        _creditor_fk('analytics_funnel_weeks'),
        sa.PrimaryKeyConstraint(*DIMENSIONS, name=op.f('pk_analytics_funnel_weeks')),
    )
    op.create_table(
        'analytics_funnel_payments',
        *_dimensions(),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('payments', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        _creditor_fk('analytics_funnel_payments'),
        sa.PrimaryKeyConstraint(*DIMENSIONS, 'currency', 'days', name=op.f('pk_analytics_funnel_payments')),
    )
    op.create_table(
        'analytics_payment_weeks',
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('week', sa.Date(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('payments', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        _creditor_fk('analytics_payment_weeks'),
        sa.PrimaryKeyConstraint('creditor_id', 'week', 'currency', 'source', name=op.f('pk_analytics_payment_weeks')),
    )
    op.create_table(
        'analytics_bill_weeks',
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('week', sa.Date(), nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('bills', sa.Integer(), nullable=False),
        sa.Column('billed', sa.BigInteger(), nullable=False),
        sa.Column('paid', sa.Integer(), nullable=False),
        sa.Column('paid_before_reminder', sa.Integer(), nullable=False),
        sa.Column('handed_off', sa.Integer(), nullable=False),
        sa.Column('outstanding', sa.BigInteger(), nullable=False),
        _creditor_fk('analytics_bill_weeks'),
        sa.PrimaryKeyConstraint('creditor_id', 'week', 'plan_id', 'currency', name=op.f('pk_analytics_bill_weeks')),
    )
    op.create_table(
        'analytics_clarity',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('place', sa.String(length=8), nullable=False),
        sa.Column('clear', sa.Boolean(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('support_request_id', sa.Integer(), nullable=True),
        sa.Column('locale', sa.String(length=8), nullable=False),
        sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', app.models.UTCDateTime(timezone=True), nullable=False),
        _creditor_fk('analytics_clarity'),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_analytics_clarity_invoice_id_invoices'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['support_request_id'], ['support_requests.id'],
                                name=op.f('fk_analytics_clarity_support_request_id_support_requests'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_clarity')),
        sa.UniqueConstraint('invoice_id', 'place', name=op.f('uq_analytics_clarity_invoice_id_place')),
    )
    op.create_index('ix_analytics_clarity_creditor_id_updated_at', 'analytics_clarity', ['creditor_id', 'updated_at'])
    op.create_index('ix_dunning_messages_creditor_id_created_at', 'dunning_messages', ['creditor_id', 'created_at'])
    op.create_index('ix_invoices_creditor_id_due_date', 'invoices', ['creditor_id', 'due_date'])


def downgrade():
    op.drop_index('ix_invoices_creditor_id_due_date', table_name='invoices')
    op.drop_index('ix_dunning_messages_creditor_id_created_at', table_name='dunning_messages')
    op.drop_index('ix_analytics_clarity_creditor_id_updated_at', table_name='analytics_clarity')
    op.drop_table('analytics_clarity')
    op.drop_table('analytics_bill_weeks')
    op.drop_table('analytics_payment_weeks')
    op.drop_table('analytics_funnel_payments')
    op.drop_table('analytics_funnel_weeks')
    op.drop_index('ix_analytics_attributions_message_id', table_name='analytics_attributions')
    op.drop_table('analytics_attributions')
