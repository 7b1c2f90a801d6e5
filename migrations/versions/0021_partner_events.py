"""partner events: a case the partner gives back (status 'returned'), what a partner reports beyond
payments (details of an event, and an agent's hand on it), the partner's own figure of what the debtor
owes it, and business customers' organisation numbers; an index of a bill's cases

Revision ID: 0021
Revises: 0015
Create Date: 2026-12-06

Every new column is nullable, so existing rows stay valid. The CHECK of a case's status gains
'returned' (written out, as in 0008); going down, a returned case reads as recalled.
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

BEFORE = ('sent', 'acknowledged', 'recall_requested', 'recalled', 'closed_paid', 'closed_uncollectable')
AFTER = (*BEFORE, 'returned')


def condition(values):
    return f"status IN ({', '.join(repr(value) for value in values)})"


def upgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('org_number', sa.String(length=20), nullable=True))

    with op.batch_alter_table('collection_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_claim', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('partner_claim_at', app.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f('ck_collection_cases_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_collection_cases_status'), condition(AFTER))
        batch_op.create_index('ix_collection_cases_invoice_id', ['invoice_id'], unique=False)

    with op.batch_alter_table('collection_case_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('details', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('handled_at', app.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('handled_by', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('collection_case_events', schema=None) as batch_op:
        batch_op.drop_column('handled_by')
        batch_op.drop_column('handled_at')
        batch_op.drop_column('details')

    op.execute("UPDATE collection_cases SET status = 'recalled' WHERE status = 'returned'")
    with op.batch_alter_table('collection_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_collection_cases_invoice_id')
        batch_op.drop_constraint(op.f('ck_collection_cases_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_collection_cases_status'), condition(BEFORE))
        batch_op.drop_column('partner_claim_at')
        batch_op.drop_column('partner_claim')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('org_number')
