"""letters: each printing of a letter (letter_prints), a letter asked to be printed again or
withdrawn, and the short code of a letter's link (access_links.code_hash)

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-08

Every new column is nullable, so existing rows stay valid: no link has a short code, no letter was
asked to be printed again. The CHECK of a letter's status gains 'withdrawn' (written out, as in 0008).
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('access_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_access_links_code_hash'), ['code_hash'])

    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reprint_requested_at', app.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reprint_requested_by', sa.String(length=64), nullable=True))
        batch_op.drop_constraint(op.f('ck_letters_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_letters_status'), "status IN ('pending', 'printed', 'withdrawn')")

    op.create_table('letter_prints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('batch', sa.Date(), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('file_name', sa.String(length=120), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('printed_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_letter_prints_creditor_id_creditors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], name=op.f('fk_letter_prints_letter_id_letters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['access_links.id'], name=op.f('fk_letter_prints_link_id_access_links'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_prints'))
    )
    with op.batch_alter_table('letter_prints', schema=None) as batch_op:
        batch_op.create_index('ix_letter_prints_letter_id', ['letter_id'], unique=False)
        batch_op.create_index('ix_letter_prints_batch', ['batch', 'part'], unique=False)


def downgrade():
    with op.batch_alter_table('letter_prints', schema=None) as batch_op:
        batch_op.drop_index('ix_letter_prints_batch')
        batch_op.drop_index('ix_letter_prints_letter_id')

    op.drop_table('letter_prints')
    op.execute("UPDATE letters SET status = 'printed' WHERE status = 'withdrawn'")
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_letters_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_letters_status'), "status IN ('pending', 'printed')")
        batch_op.drop_column('reprint_requested_by')
        batch_op.drop_column('reprint_requested_at')

    with op.batch_alter_table('access_links', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_access_links_code_hash'), type_='unique')
        batch_op.drop_column('code_hash')
