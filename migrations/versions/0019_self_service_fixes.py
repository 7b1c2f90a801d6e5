"""self-service fixes: the kind of a bill (invoices.kind), a creditor's call-back hours and least
balance for instalment plans, and the exact window a customer chose for a call back

Revision ID: 0019
Revises: 0015
Create Date: 2026-12-06

Existing bills are ordinary bills ('standard'); existing creditors take call backs in the default
hours (NULL) and the least balance of their currency (0: the table in app/resolutions/offer_rules.py).
A call back asked for before this revision keeps its date and window name without a start and end.
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0017'
branch_labels = None
depends_on = None

KINDS = "kind IN ('standard', 'on_account', 'prepayment')"


def upgrade():
    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_hours', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('plan_min_balance', sa.BigInteger(), server_default='0', nullable=False))

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='standard', nullable=False))
        batch_op.create_check_constraint(op.f('ck_invoices_kind'), KINDS)

    with op.batch_alter_table('support_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_start', app.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('callback_end', app.models.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('support_requests', schema=None) as batch_op:
        batch_op.drop_column('callback_end')
        batch_op.drop_column('callback_start')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoices_kind'), type_='check')
        batch_op.drop_column('kind')

    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.drop_column('plan_min_balance')
        batch_op.drop_column('callback_hours')
