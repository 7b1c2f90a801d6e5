"""credit notes numbered per creditor (the series' last number), and a creditor's own id of a note

Revision ID: 0027
Revises: 0022
Create Date: 2026-12-06

Credit notes issued before keep the numbers they have (the invoice's number and -CN1, -CN2…); new
ones take CN-000001, CN-000002… of their creditor's series, which cannot collide with those.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_ref', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(op.f('uq_credit_notes_creditor_id_external_ref'),
                                          ['creditor_id', 'external_ref'])
    op.create_table(
        'credit_note_series',
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('last_number', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'],
                                name=op.f('fk_credit_note_series_creditor_id_creditors'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('creditor_id', name=op.f('pk_credit_note_series')),
    )


def downgrade():
    op.drop_table('credit_note_series')
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_credit_notes_creditor_id_external_ref'), type_='unique')
        batch_op.drop_column('external_ref')
