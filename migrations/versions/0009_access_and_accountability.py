"""access and accountability: a revocation ends a bill's grants; agents' sessions known to the
server; second-factor secrets encrypted, resets with a one-time enrolment code; audit entries that
carry the creditors they concern and can never lose their agent or creditor

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

- invoices.link_revocations: raised by every revocation of the invoice's links; a browser's grant
  carries the value it was given under.
- agent_sessions: one row per signed-in session; signing out closes it.
- agents: totp_secret_encrypted (Fernet under DATA_ENCRYPTION_KEYS), totp_pending_encrypted (the
  secret being enrolled), enrolment_code_required / _hash / _expires_at (after a reset). The old
  clear-text totp_secret stays, read only to be encrypted at the agent's next sign-in or by `flask
  agents encrypt-secrets`: this migration needs no application keys (see docs/decisions.md).
  A later migration drops it once every deployment ran the command.
- audit_entries: actor (agent, operator, anonymous) and scope (creditor, creditors, agent), with
  CHECKs that an agent's entry names its agent and a creditor's entry its creditor; foreign keys
  RESTRICT instead of SET NULL (an agent or creditor with audit entries cannot be deleted);
  audit_entry_creditors lists the creditors of an entry of several. The append-only triggers now
  refuse every UPDATE and DELETE of both tables, SET NULL included.

Rows written before: actor is "agent" where the entry names an agent, "operator" for the command
line's actions (agent_created, role_granted, sign_out_everywhere without an agent), otherwise
"anonymous" (an unknown address at sign-in, or an agent deleted before, whose id is gone). Scope is
"creditor" where the entry names a creditor, "agent" for signing in and out, otherwise "creditors"
with no creditor listed: such an entry (an inbox viewed or a search, across the agent's creditors
at the time, which were not recorded) is shown to nobody in the back office; it stays in the table.

Downgrading drops the encrypted secrets (their agents enrol again at the next sign-in, without a
code) and the sessions (everyone signs in again).
"""
from alembic import op
import sqlalchemy as sa

import app.models


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

SIGNING_IN = ('sign_in', 'sign_in_refused', 'sign_out', 'sign_out_everywhere', 'mfa_enrolled',
              'mfa_enrolment_refused')
BY_OPERATOR = ('agent_created', 'role_granted', 'sign_out_everywhere')


def upgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_revocations', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_pending_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('enrolment_code_required', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('enrolment_code_hash', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('enrolment_code_expires_at', app.models.UTCDateTime(timezone=True),
                                      nullable=True))

    op.create_table('agent_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', app.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_sessions_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_sessions')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_agent_sessions_key_hash'))
    )
    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_agent_sessions_agent_id', ['agent_id'], unique=False)

    # The audit log: the old triggers let ON DELETE SET NULL through; they go first (the backfill
    # below is an UPDATE), and stricter ones come at the end.
    _drop_0006_triggers()
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('scope', sa.String(length=10), nullable=True))
    entries = sa.table('audit_entries', sa.column('agent_id'), sa.column('creditor_id'), sa.column('action'),
                       sa.column('actor'), sa.column('scope'))
    op.execute(entries.update().values(
        actor=sa.case((entries.c.agent_id.is_not(None), 'agent'),
                      (entries.c.action.in_(BY_OPERATOR), 'operator'), else_='anonymous'),
        scope=sa.case((entries.c.creditor_id.is_not(None), 'creditor'),
                      (entries.c.action.in_(SIGNING_IN), 'agent'), else_='creditors'),
    ))
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.alter_column('actor', existing_type=sa.String(length=10), nullable=False)
        batch_op.alter_column('scope', existing_type=sa.String(length=10), nullable=False)
        batch_op.create_check_constraint(op.f('ck_audit_entries_actor'), "actor IN ('agent', 'operator', 'anonymous')")
        batch_op.create_check_constraint(op.f('ck_audit_entries_scope'), "scope IN ('creditor', 'creditors', 'agent')")
        batch_op.create_check_constraint(op.f('ck_audit_entries_agent_of_actor'),
                                         "(actor = 'agent') = (agent_id IS NOT NULL)")
        batch_op.create_check_constraint(op.f('ck_audit_entries_creditor_of_scope'),
                                         "(scope = 'creditor') = (creditor_id IS NOT NULL)")
        batch_op.drop_constraint(op.f('fk_audit_entries_agent_id_agents'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_audit_entries_creditor_id_creditors'), type_='foreignkey')
        batch_op.create_foreign_key(op.f('fk_audit_entries_agent_id_agents'), 'agents', ['agent_id'], ['id'],
                                    ondelete='RESTRICT')
        batch_op.create_foreign_key(op.f('fk_audit_entries_creditor_id_creditors'), 'creditors', ['creditor_id'],
                                    ['id'], ondelete='RESTRICT')

    op.create_table('audit_entry_creditors',
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditors.id'], name=op.f('fk_audit_entry_creditors_creditor_id_creditors'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['entry_id'], ['audit_entries.id'], name=op.f('fk_audit_entry_creditors_entry_id_audit_entries'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('entry_id', 'creditor_id', name=op.f('pk_audit_entry_creditors'))
    )
    with op.batch_alter_table('audit_entry_creditors', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entry_creditors_creditor_id', ['creditor_id'], unique=False)

    for table in APPEND_ONLY:
        _append_only(table)


def downgrade():
    for table in reversed(APPEND_ONLY):
        _drop_append_only(table)
    with op.batch_alter_table('audit_entry_creditors', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_creditors_creditor_id')
    op.drop_table('audit_entry_creditors')

    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_audit_entries_creditor_id_creditors'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_audit_entries_agent_id_agents'), type_='foreignkey')
        batch_op.create_foreign_key(op.f('fk_audit_entries_agent_id_agents'), 'agents', ['agent_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_foreign_key(op.f('fk_audit_entries_creditor_id_creditors'), 'creditors', ['creditor_id'],
                                    ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(op.f('ck_audit_entries_creditor_of_scope'), type_='check')
        batch_op.drop_constraint(op.f('ck_audit_entries_agent_of_actor'), type_='check')
        batch_op.drop_constraint(op.f('ck_audit_entries_scope'), type_='check')
        batch_op.drop_constraint(op.f('ck_audit_entries_actor'), type_='check')
        batch_op.drop_column('scope')
        batch_op.drop_column('actor')
    _create_0006_triggers()

    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_sessions_agent_id')
    op.drop_table('agent_sessions')

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('enrolment_code_expires_at')
        batch_op.drop_column('enrolment_code_hash')
        batch_op.drop_column('enrolment_code_required')
        batch_op.drop_column('totp_pending_encrypted')
        batch_op.drop_column('totp_secret_encrypted')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('link_revocations')


# --- append-only, in the database -------------------------------------------------------------------

APPEND_ONLY = ('audit_entries', 'audit_entry_creditors')


def _is_postgresql():
    return op.get_bind().dialect.name == "postgresql"


def _append_only(table):
    """Every UPDATE and DELETE of `table` refused, whoever asks (the app, a console, a script), setting
    a column to NULL included. Deleting a row the table refers to is refused before, by RESTRICT."""
    if _is_postgresql():
        op.execute(f"""
            CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only';
            END $$""")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")
    else:
        op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
        op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def _drop_append_only(table):
    if _is_postgresql():
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION {table}_append_only()")
    else:
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(f"DROP TRIGGER {table}_no_delete")


def _drop_0006_triggers():
    _drop_append_only('audit_entries')  # 0006 used the same names


# 0006's triggers, written out again for the downgrade (a migration does not import another).
_UNCHANGED_0006 = ("NEW.id = OLD.id AND NEW.at {same} OLD.at AND NEW.action {same} OLD.action "
                   "AND NEW.record_type {same} OLD.record_type AND NEW.record_id {same} OLD.record_id "
                   "AND NEW.ip {same} OLD.ip AND {detail} "
                   "AND (NEW.agent_id {same} OLD.agent_id OR NEW.agent_id IS NULL) "
                   "AND (NEW.creditor_id {same} OLD.creditor_id OR NEW.creditor_id IS NULL)")


def _create_0006_triggers():
    if _is_postgresql():
        unchanged = _UNCHANGED_0006.format(same="IS NOT DISTINCT FROM", detail="NEW.detail::text = OLD.detail::text")
        op.execute(f"""
            CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND {unchanged} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'audit_entries is append-only';
            END $$""")
        op.execute("CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
                   "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()")
    else:
        unchanged = _UNCHANGED_0006.format(same="IS", detail="NEW.detail IS OLD.detail")
        op.execute(f"CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
                   f"WHEN NOT ({unchanged}) BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END")
        op.execute("CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
                   "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END")
