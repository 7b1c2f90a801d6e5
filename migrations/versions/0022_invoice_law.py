"""invoices that meet the law: the creditor's VAT id and tax number (Germany's Steuernummer), a
business customer's VAT id

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

Every new column is nullable, so existing rows stay valid.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('creditors') as batch:
        batch.add_column(sa.Column('vat_id', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('tax_number', sa.String(length=20), nullable=True))
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('vat_id', sa.String(length=20), nullable=True))


def downgrade():
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('vat_id')
    with op.batch_alter_table('creditors') as batch:
        batch.drop_column('tax_number')
        batch.drop_column('vat_id')
