"""CHECK constraints: every column that holds a status, a kind or a role takes only its enum's codes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

The codes are those of the enums at this revision (app.billing.models.InvoiceStatus, ...), written
out here: a migration must not import code that changes after it. Adding a code to an enum later
takes a migration that replaces its constraint. Before this revision, every value written to these
columns came from those classes, so existing rows satisfy the constraints.

On SQLite, batch mode copies each table into a new one with the constraint (SQLite cannot add one
to a table); env.py turns foreign keys off while migrations run, so that dropping the old table does
not cascade to the rows that refer to it.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PAYMENT_STATUSES = ('pending', 'requires_action', 'processing', 'succeeded', 'failed', 'cancelled')

# table: {column: the codes it may hold}. The constraints are named ck_<table>_<column>, as the
# models' naming convention names CheckConstraint(..., name=<column>).
CHECKS = {
    'invoices': {  # InvoiceStatus
        'status': ('open', 'partially_paid', 'paid', 'disputed', 'on_hold', 'in_collection', 'cancelled',
                   'written_off'),
    },
    'support_requests': {  # RequestStatus
        'status': ('open', 'answered', 'closed'),
    },
    'resolutions': {  # Kind, Status
        'kind': ('dispute', 'promise', 'deferral', 'plan'),
        'status': ('open', 'active', 'kept', 'broken', 'upheld', 'partial', 'rejected', 'declined', 'cancelled'),
    },
    'outbox_messages': {  # OutboxStatus
        'status': ('pending', 'delivered', 'dead'),
    },
    'bank_entries': {  # EntryStatus, KeptReason (NULL when matched)
        'status': ('matched', 'unmatched', 'ambiguous', 'resolved'),
        'reason': ('unknown_account', 'shared_account', 'reference_not_found', 'currency_mismatch',
                   'several_invoices', 'no_match'),
    },
    'payment_attempts': {'status': PAYMENT_STATUSES},  # PaymentStatus
    'simulator_payments': {'status': PAYMENT_STATUSES},  # PaymentStatus
    'collection_cases': {  # CaseStatus
        'status': ('sent', 'acknowledged', 'recall_requested', 'recalled', 'closed_paid', 'closed_uncollectable'),
    },
    'agent_roles': {  # Role
        'role': ('agent', 'supervisor', 'admin'),
    },
}


def condition(column, values):
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade():
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values in columns.items():
                batch_op.create_check_constraint(op.f(f'ck_{table}_{column}'), condition(column, values))


def downgrade():
    for table, columns in reversed(CHECKS.items()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_constraint(op.f(f'ck_{table}_{column}'), type_='check')
