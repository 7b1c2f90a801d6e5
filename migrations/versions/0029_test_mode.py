"""test mode: API keys, invoices and customers are live or test

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06

Every existing key, invoice and customer is live (the server default), so nothing an integration
already does changes. The unique constraints on an invoice's number and payment reference, on a
customer's reference and on a credit note's external reference gain the flag: a test invoice may carry the number of a live one. Batch mode
rebuilds the tables on SQLite, where constraints cannot be altered in place.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_customers_creditor_id_external_ref'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_customers_creditor_id_livemode_external_ref'),
                                          ['creditor_id', 'livemode', 'external_ref'])

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_invoices_creditor_id_number'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_invoices_creditor_id_payment_reference'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_creditor_id_livemode_number'),
                                          ['creditor_id', 'livemode', 'number'])
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_creditor_id_livemode_payment_reference'),
                                          ['creditor_id', 'livemode', 'payment_reference'])

    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_credit_notes_creditor_id_external_ref'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_credit_notes_creditor_id_livemode_external_ref'),
                                          ['creditor_id', 'livemode', 'external_ref'])

    with op.batch_alter_table('creditor_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    # The older code cannot tell test data from live data, and test numbers may repeat live ones:
    # going down is refused while test invoices or customers exist (nothing is changed), and test
    # keys are revoked.
    bind = op.get_bind()
    for name in ('invoices', 'customers'):
        rows = sa.table(name, sa.column('livemode'))
        if bind.execute(sa.select(sa.func.count()).select_from(rows).where(rows.c.livemode.is_(False))).scalar():
            raise RuntimeError(f"test-mode {name} exist: delete them before going below revision 0029")
    keys = sa.table('api_keys', sa.column('livemode'), sa.column('revoked_at'))
    bind.execute(sa.update(keys).where(keys.c.livemode.is_(False), keys.c.revoked_at.is_(None))
                 .values(revoked_at=sa.func.now()))

    with op.batch_alter_table('creditor_events', schema=None) as batch_op:
        batch_op.drop_column('livemode')

    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_credit_notes_creditor_id_livemode_external_ref'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_credit_notes_creditor_id_external_ref'),
                                          ['creditor_id', 'external_ref'])
        batch_op.drop_column('livemode')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_invoices_creditor_id_livemode_payment_reference'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_invoices_creditor_id_livemode_number'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_creditor_id_payment_reference'),
                                          ['creditor_id', 'payment_reference'])
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_creditor_id_number'), ['creditor_id', 'number'])
        batch_op.drop_column('livemode')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_customers_creditor_id_livemode_external_ref'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_customers_creditor_id_external_ref'),
                                          ['creditor_id', 'external_ref'])
        batch_op.drop_column('livemode')

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('livemode')
