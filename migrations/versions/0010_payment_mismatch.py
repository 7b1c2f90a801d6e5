"""payments.mismatch: a provider's payment of another amount or currency than its attempt asked for

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06

Such a payment is recorded as received, not booked on the invoice, and owed back in full
(app.payments.models.PaymentMismatch). NULL for every other payment, so existing rows need nothing.
The codes are written out here, as in 0008: a migration does not import the enums.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

MISMATCHES = ('amount', 'currency')


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mismatch', sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_payments_mismatch'), f"mismatch IN ({', '.join(repr(code) for code in MISMATCHES)})")


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_mismatch'), type_='check')
        batch_op.drop_column('mismatch')
