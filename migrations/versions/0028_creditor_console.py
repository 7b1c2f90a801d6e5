"""creditor console: the creditor admin role, e-mails' sender name and reply-to, providers' keys stored
encrypted

Revision ID: 0028
Revises: 0023
Create Date: 2026-12-06

The role column widens to 20 characters for 'creditor_admin', and its CHECK gains it (written out, as
in 0008). Every new column is nullable, so existing rows stay valid. Going down, creditor admins lose
their role (a role the older code does not know), and the stored keys are dropped: the instance's
PAYMENT_GATEWAYS keys are all the older code reads.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0028'
down_revision = '0023'
branch_labels = None
depends_on = None

BEFORE = ('agent', 'supervisor', 'admin')
AFTER = (*BEFORE, 'creditor_admin')


def condition(values):
    return f"role IN ({', '.join(repr(value) for value in values)})"


def upgrade():
    with op.batch_alter_table('agent_roles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_agent_roles_role'), type_='check')
        batch_op.alter_column('role', existing_type=sa.String(length=12), type_=sa.String(length=20),
                              existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_agent_roles_role'), condition(AFTER))

    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_sender_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('email_reply_to', sa.String(length=254), nullable=True))

    with op.batch_alter_table('creditor_gateways', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credentials_encrypted', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('creditor_gateways', schema=None) as batch_op:
        batch_op.drop_column('credentials_encrypted')

    with op.batch_alter_table('creditors', schema=None) as batch_op:
        batch_op.drop_column('email_reply_to')
        batch_op.drop_column('email_sender_name')

    op.execute("DELETE FROM agent_roles WHERE role = 'creditor_admin'")
    with op.batch_alter_table('agent_roles', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_agent_roles_role'), type_='check')
        batch_op.alter_column('role', existing_type=sa.String(length=20), type_=sa.String(length=12),
                              existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_agent_roles_role'), condition(BEFORE))
