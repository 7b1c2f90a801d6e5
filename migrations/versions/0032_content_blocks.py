"""content blocks: the creditor's messages on the bill page, the receipt and reminder e-mails

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06

Blocks (with their targeting as data), their variants (texts per language, weights), what customers saw
and clicked (one row per block and bill), the leads of "I am interested". The creditor gains
`content_version` (raised by every change of a block: the per-process cache of its blocks is keyed by
it) and the most blocks per page; an invoice line gains the creditor's product code (a rule may name it); the
customer gains "no offers, please", the tags the creditor sends,
and the days each block was seen (the cap over time). The role CHECK gains 'content_editor' (14
characters: the column is 20 since 0028). Going down, content editors lose their role.
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None

BEFORE = ('agent', 'supervisor', 'admin', 'creditor_admin')
AFTER = (*BEFORE, 'content_editor')


def condition(values):
    return f"role IN ({', '.join(repr(value) for value in values)})"


def upgrade():
    with op.batch_alter_table('agent_roles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_agent_roles_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_agent_roles_role'), condition(AFTER))

    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('content_max_blocks', sa.Integer(), nullable=False, server_default='2'))

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_code', sa.String(length=40), nullable=True))

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('no_offers', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('content_tags', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('content_seen', sa.JSON(), nullable=True))

    op.create_table(
        'content_blocks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('livemode', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('placements', sa.JSON(), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('starts_on', sa.Date(), nullable=True),
        sa.Column('ends_on', sa.Date(), nullable=True),
        sa.Column('action', sa.String(length=10), nullable=False, server_default='none'),
        sa.Column('target_url', sa.String(length=500), nullable=True),
        sa.Column('targeting', sa.JSON(), nullable=False),
        sa.Column('cap_days', sa.Integer(), nullable=True),
        sa.Column('image', sa.LargeBinary(), nullable=True),
        sa.Column('image_mime', sa.String(length=32), nullable=True),
        sa.Column('image_version', sa.String(length=16), nullable=True),
        sa.Column('stopped_at', app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('information', 'engagement', 'offer')", name=op.f('ck_content_blocks_kind')),
        sa.CheckConstraint("action IN ('none', 'link', 'interest')", name=op.f('ck_content_blocks_action')),
        sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_content_blocks_creditor_id_creditors'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_blocks')),
        sa.UniqueConstraint('public_id', name=op.f('uq_content_blocks_public_id')),
    )
    op.create_index('ix_content_blocks_creditor_id', 'content_blocks', ['creditor_id'])

    op.create_table(
        'content_variants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('block_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('weight', sa.Integer(), nullable=False, server_default='1'),
        sa.Column('texts', sa.JSON(), nullable=False),
        sa.Column('stopped_at', app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('weight >= 0', name=op.f('ck_content_variants_weight')),
        sa.ForeignKeyConstraint(['block_id'], ['content_blocks.id'], name=op.f('fk_content_variants_block_id_content_blocks'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_variants')),
        sa.UniqueConstraint('block_id', 'name', name=op.f('uq_content_variants_block_id_name')),
    )

    op.create_table(
        'content_exposures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('block_id', sa.Integer(), nullable=False),
        sa.Column('variant_id', sa.Integer(), nullable=False),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('placement', sa.String(length=10), nullable=False),
        sa.Column('first_seen_at', app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_seen_on', sa.Date(), nullable=True),
        sa.Column('days_seen', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('clicks', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('first_click_at', app.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['block_id'], ['content_blocks.id'], name=op.f('fk_content_exposures_block_id_content_blocks'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['variant_id'], ['content_variants.id'],
                                name=op.f('fk_content_exposures_variant_id_content_variants'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_content_exposures_invoice_id_invoices'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_content_exposures_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_exposures')),
        sa.UniqueConstraint('block_id', 'invoice_id', name=op.f('uq_content_exposures_block_id_invoice_id')),
    )
    op.create_index('ix_content_exposures_variant_id', 'content_exposures', ['variant_id'])
    op.create_index('ix_content_exposures_invoice_id', 'content_exposures', ['invoice_id'])
    op.create_index('ix_content_exposures_customer_id', 'content_exposures', ['customer_id'])

    op.create_table(
        'content_leads',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('block_id', sa.Integer(), nullable=False),
        sa.Column('variant_id', sa.Integer(), nullable=False),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('livemode', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_content_leads_creditor_id_creditors'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['block_id'], ['content_blocks.id'], name=op.f('fk_content_leads_block_id_content_blocks'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['variant_id'], ['content_variants.id'],
                                name=op.f('fk_content_leads_variant_id_content_variants'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_content_leads_invoice_id_invoices'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_content_leads_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_leads')),
        sa.UniqueConstraint('public_id', name=op.f('uq_content_leads_public_id')),
        sa.UniqueConstraint('block_id', 'invoice_id', name=op.f('uq_content_leads_block_id_invoice_id')),
    )
    op.create_index('ix_content_leads_creditor_id', 'content_leads', ['creditor_id', 'created_at'])
    op.create_index('ix_content_leads_customer_id', 'content_leads', ['customer_id'])


def downgrade():
    op.drop_index('ix_content_leads_customer_id', table_name='content_leads')
    op.drop_index('ix_content_leads_creditor_id', table_name='content_leads')
    op.drop_table('content_leads')
    op.drop_index('ix_content_exposures_customer_id', table_name='content_exposures')
    op.drop_index('ix_content_exposures_invoice_id', table_name='content_exposures')
    op.drop_index('ix_content_exposures_variant_id', table_name='content_exposures')
    op.drop_table('content_exposures')
    op.drop_table('content_variants')
    op.drop_index('ix_content_blocks_creditor_id', table_name='content_blocks')
    op.drop_table('content_blocks')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('content_seen')
        batch_op.drop_column('content_tags')
        batch_op.drop_column('no_offers')

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_column('product_code')

    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.drop_column('content_max_blocks')
        batch_op.drop_column('content_version')

    op.execute("DELETE FROM agent_roles WHERE role = 'content_editor'")
    with op.batch_alter_table('agent_roles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_agent_roles_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_agent_roles_role'), condition(BEFORE))
