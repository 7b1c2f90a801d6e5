"""test mode, the remaining gaps: webhook endpoints live or test, providers' test keys, messages of
test bills; creditor texts in several languages and the portal's own line texts

Revision ID: 0034
Revises: 0030
Create Date: 2026-12-06

Every existing endpoint and outbox message is live (the server default), so what is delivered today
keeps being delivered. A creditor's providers gain a second, separate set of stored keys for test
bills (encrypted, as the live ones); nullable: none stored.

Invoices and lines gain `texts` (JSON, nullable: a creditor text in several languages; the plain
columns keep one text each, so existing rows and readers keep working), and lines a `text_key` for the
fee and interest lines the portal writes, shown in the reader's language. Existing portal-written lines
are recognised by their kind and their words in one of the portal's languages (as the catalogs had
them when this revision was written) and get their key; any other line keeps its words as written.
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

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('texts', sa.JSON(), nullable=True))

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('texts', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('text_key', sa.String(length=40), nullable=True))

    lines = sa.table('invoice_lines', sa.column('kind'), sa.column('description'), sa.column('text_key'))
    bind = op.get_bind()
    for key, kind, words in PORTAL_LINES:
        bind.execute(sa.update(lines).where(lines.c.kind == kind, lines.c.description.in_(words),
                                            lines.c.text_key.is_(None)).values(text_key=key))


#: (text key, line kind, the words in en, nb, de) of the lines the portal wrote before 0034.
PORTAL_LINES = (
    ("reminder_fee", "reminder_fee", ("Reminder fee", "Purregebyr", "Mahngebühr")),
    ("flat_fee_late_payment", "other_fee", ("Flat fee for late payment (§ 288(5) BGB)",
                                            "Fast gebyr for forsinket betaling (§ 288(5) BGB)",
                                            "Verzugspauschale (§ 288 Abs. 5 BGB)")),
    ("default_interest", "interest", ("Default interest", "Forsinkelsesrente", "Verzugszinsen")),
    ("plan_fee", "other_fee", ("Instalment plan fee", "Gebyr for nedbetalingsplan", "Gebühr für den Ratenplan")),
    ("plan_interest", "interest", ("Interest for the instalment plan", "Renter for nedbetalingsplanen",
                                   "Zinsen für den Ratenplan")),
    ("deferral_fee", "other_fee", ("Fee for a later due date", "Gebyr for betalingsutsettelse",
                                   "Gebühr für den Zahlungsaufschub")),
)


def downgrade():
    # Below 0034 every endpoint is live: a test endpoint would start receiving live events, so going
    # down deletes the test endpoints (and their deliveries, by the foreign keys' cascade).
    endpoints = sa.table('webhook_endpoints', sa.column('livemode'))
    op.get_bind().execute(sa.delete(endpoints).where(endpoints.c.livemode.is_(False)))

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_column('text_key')
        batch_op.drop_column('texts')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('texts')

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('livemode')

    with op.batch_alter_table('creditor_gateways', schema=None) as batch_op:
        batch_op.drop_column('test_credentials_encrypted')

    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('livemode')
