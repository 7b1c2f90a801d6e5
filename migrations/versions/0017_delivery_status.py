"""delivery status: the link each dunning message carried (its first opening marks the message
"opened"), and customers found by their mobile number (an SMS STOP reply names only the number)

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-06

Both additions are nullable or indexes only: existing messages carried links that were not
recorded, and stay as they are.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dunning_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_dunning_messages_link_id_access_links'), 'access_links',
                                    ['link_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_dunning_messages_link_id', ['link_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_phone', ['phone'], unique=False)


def downgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_phone')

    with op.batch_alter_table('dunning_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_messages_link_id')
        batch_op.drop_constraint(batch_op.f('fk_dunning_messages_link_id_access_links'), type_='foreignkey')
        batch_op.drop_column('link_id')
