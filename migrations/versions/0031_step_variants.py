"""variants of a reminder step's text (experiments): a key, a weight, the text per language, stopped or not

Revision ID: 0031
Revises: 0034
Create Date: 2026-12-06

A variant is saved with its plan version (plans are never changed once saved); only its stop is
recorded later (stopped_at, stopped_by). The message carries the key it was sent with
(dunning_messages.variant, 0030).
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0031'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'dunning_step_variants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('step_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('weight', sa.Integer(), nullable=False),
        sa.Column('texts', sa.JSON(), nullable=False),
        sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('stopped_at', app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('stopped_by', sa.String(length=120), nullable=True),
        sa.CheckConstraint('weight >= 1 AND weight <= 1000', name=op.f('ck_dunning_step_variants_weight_range')),
        sa.ForeignKeyConstraint(['step_id'], ['dunning_steps.id'],
                                name=op.f('fk_dunning_step_variants_step_id_dunning_steps'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_step_variants')),
        sa.UniqueConstraint('step_id', 'key', name=op.f('uq_dunning_step_variants_step_id_key')),
    )


def downgrade():
    op.drop_table('dunning_step_variants')
