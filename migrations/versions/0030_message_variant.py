"""the reminder text variant a message carried (experiments on a reminder step's text)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06

Nullable: a message sent before experiments, or from a step without variants, carries none.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dunning_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('variant', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('dunning_messages', schema=None) as batch_op:
        batch_op.drop_column('variant')
