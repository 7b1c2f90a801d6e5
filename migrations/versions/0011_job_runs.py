"""job_runs: each periodic job's last success, read by /metrics

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_runs',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('last_success_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_runs'))
    )


def downgrade():
    op.drop_table('job_runs')
