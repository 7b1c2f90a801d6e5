"""test mode, the remaining gaps: webhook endpoints live or test, providers' test keys, messages of
test bills

Revision ID: 0034
Revises: 0030
Create Date: 2026-12-06

Every existing endpoint and outbox message is live (the server default), so what is delivered today
keeps being delivered. A creditor's providers gain a second, separate set of stored keys for test
bills (encrypted, as the live ones); nullable: none stored.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0034'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table('creditor_gateways', schema=None) as batch_op:
        batch_op.add_column(sa.Column('test_credentials_encrypted', sa.Text(), nullable=True))

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    # Below 0034 every endpoint is live: a test endpoint would start receiving live events, so going
    # down deletes the test endpoints (and their deliveries, by the foreign keys' cascade).
    endpoints = sa.table('webhook_endpoints', sa.column('livemode'))
    op.get_bind().execute(sa.delete(endpoints).where(endpoints.c.livemode.is_(False)))

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('livemode')

    with op.batch_alter_table('creditor_gateways', schema=None) as batch_op:
        batch_op.drop_column('test_credentials_encrypted')

    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('livemode')
