"""The migrated schema equals the models, on SQLite and on PostgreSQL; the columns that hold a code
of an enum (a status, a kind, a role) take nothing else, and the migration that says so goes down
and up again."""

from __future__ import annotations

import itertools
import os
import re
from datetime import date
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from app import create_app
from app.audit import AuditActor, AuditScope
from app.backoffice.models import Role
from app.billing.models import InvoiceKind, InvoiceLine, InvoiceStatus, ReminderChannel
from app.content.models import Action as ContentAction
from app.content.models import Kind as ContentKind
from app.debt_collection.models import CaseStatus
from app.dunning.models import (
    Anchor,
    Channel,
    ContactKind,
    Jurisdiction,
    LetterStatus,
    MessageStatus,
    NoticeStatus,
    StepKind,
)
from app.extensions import db
from app.models import UTCDateTime, utcnow
from app.outbox.models import OutboxStatus
from app.payments.bank.models import EntryStatus, KeptReason
from app.payments.gateways.base import PaymentStatus
from app.payments.models import PaymentMismatch
from app.privacy.models import MarkKind
from app.resolutions.models import Kind, Status
from app.support.models import RequestStatus
from tests.factories import make_creditor


def test_migrations_match_models(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_every_model_table_is_migrated(app):
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables


# --- CHECK constraints ----------------------------------------------------------------------------

#: Every column that holds a code, and the enum of its codes. Migration 0008 wrote their values out.
ENUM_COLUMNS = {
    ("invoices", "status"): InvoiceStatus,
    ("support_requests", "status"): RequestStatus,
    ("resolutions", "kind"): Kind,
    ("resolutions", "status"): Status,
    ("outbox_messages", "status"): OutboxStatus,
    ("bank_entries", "status"): EntryStatus,
    ("bank_entries", "reason"): KeptReason,
    ("payment_attempts", "status"): PaymentStatus,
    ("simulator_payments", "status"): PaymentStatus,
    ("collection_cases", "status"): CaseStatus,
    ("agent_roles", "role"): Role,
    ("payments", "mismatch"): PaymentMismatch,  # migration 0010
    ("audit_entries", "actor"): AuditActor,
    ("audit_entries", "scope"): AuditScope,
    ("customers", "preferred_channel"): ReminderChannel,
    ("dunning_plans", "jurisdiction"): Jurisdiction,
    ("dunning_steps", "kind"): StepKind,
    ("dunning_steps", "anchor"): Anchor,
    ("dunning_notices", "status"): NoticeStatus,
    ("dunning_notices", "kind"): StepKind,
    ("dunning_notices", "channel"): Channel,
    ("dunning_messages", "status"): MessageStatus,
    ("dunning_messages", "channel"): Channel,
    ("letters", "status"): LetterStatus,
    ("contact_changes", "kind"): ContactKind,
    ("invoices", "kind"): InvoiceKind,
    ("privacy_marks", "kind"): MarkKind,
    ("content_blocks", "kind"): ContentKind,  # migration 0032
    ("content_blocks", "action"): ContentAction,
}
#: Tables the database refuses to UPDATE (append-only): their codes are tested on INSERT alone.
APPEND_ONLY = {"audit_entries"}
CODE_COLUMNS = sorted(column for column in ENUM_COLUMNS if column[0] not in APPEND_ONLY)
BEFORE_CHECKS = "0007"  # the revision before 0008, which added the CHECKs of codes
#: The columns whose CHECKs migration 0008 added (later migrations add their tables' with them).
CHECKED_BY_0008 = {("invoices", "status"), ("support_requests", "status"), ("resolutions", "kind"),
                   ("resolutions", "status"), ("outbox_messages", "status"), ("bank_entries", "status"),
                   ("bank_entries", "reason"), ("payment_attempts", "status"), ("simulator_payments", "status"),
                   ("collection_cases", "status"), ("agent_roles", "role")}


def quoted(sql: str) -> set[str]:
    """The string literals of a condition: the codes of `status IN ('a', 'b')`, also as PostgreSQL
    gives it back (`(status)::text = ANY (ARRAY['a'::character varying, ...])`)."""
    return set(re.findall(r"'([^']*)'", sql))


def checks_of(table: Table) -> dict[str, str]:
    """A model's CHECK constraints: {name (after the naming convention): condition}."""
    return {c.name: str(c.sqltext) for c in table.constraints if isinstance(c, CheckConstraint)}


def model_checks(table: Table) -> dict[str, set[str]]:
    return {name: quoted(sql) for name, sql in checks_of(table).items()}


def test_every_code_column_has_the_check_of_its_enum(app):  # app: every model imported
    for (table, column), enum in ENUM_COLUMNS.items():
        assert checks_of(db.metadata.tables[table]).get(f"ck_{table}_{column}") == enum.sql_in(column)
    lists = {(table.name, name.removeprefix(f"ck_{table.name}_")) for table in db.metadata.tables.values()
             for name, sql in checks_of(table).items() if " IN (" in sql}
    assert lists == set(ENUM_COLUMNS), "a CHECK of codes without its enum here, or the other way round"


def test_the_migrated_checks_match_the_models(app):
    """Names and codes alike: adding a code to an enum needs a migration that widens its CHECK."""
    with app.app_context():
        inspector = inspect(db.engine)
        for table in db.metadata.tables.values():
            migrated = {c["name"]: quoted(c["sqltext"]) for c in inspector.get_check_constraints(table.name)}
            assert migrated == model_checks(table), table.name


_unique = itertools.count(1)


def _value(column):
    """A value the column takes, unique where that matters (short: some strings have two characters)."""
    kind = column.type
    if isinstance(kind, String):
        return str(next(_unique))[: kind.length or None]
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer | Numeric):
        return 1 if isinstance(kind, Integer) else Decimal(1)
    if isinstance(kind, UTCDateTime):
        return utcnow()
    if isinstance(kind, Date):
        return date.today()
    if isinstance(kind, JSON):
        return {}
    if isinstance(kind, LargeBinary):
        return b""
    raise AssertionError(f"no test value for {column}")


def make_row(table: Table, made: dict[str, int], **given) -> int:
    """One row of `table` with its required columns filled (valid codes, the first of their enums),
    and the rows it refers to made first (once each, kept in `made` by table)."""
    values = {}
    for column in table.columns:
        if column.name in given:
            values[column.name] = given[column.name]
        elif (table.name, column.name) in ENUM_COLUMNS:
            values[column.name] = ENUM_COLUMNS[table.name, column.name].values()[0]
        elif column.primary_key or column.nullable or column.default is not None or column.server_default is not None:
            continue
        elif column.foreign_keys:
            parent = next(iter(column.foreign_keys)).column.table
            if parent.name not in made:
                made[parent.name] = make_row(parent, made)
            values[column.name] = made[parent.name]
        else:
            values[column.name] = _value(column)
    return db.session.execute(insert(table).values(values)).inserted_primary_key[0]


@pytest.mark.parametrize(("table_name", "column"), CODE_COLUMNS, ids=[f"{t}.{c}" for t, c in CODE_COLUMNS])
def test_the_database_refuses_a_code_its_enum_lacks(session, table_name, column):
    table, made, constraint = db.metadata.tables[table_name], {}, f"ck_{table_name}_{column}"
    row_id = make_row(table, made)
    with pytest.raises(IntegrityError, match=constraint), session.begin_nested():
        make_row(table, made, **{column: "bogus"})
    with pytest.raises(IntegrityError, match=constraint), session.begin_nested():
        session.execute(update(table).where(table.c.id == row_id).values({column: "bogus"}))
    for code in ENUM_COLUMNS[table_name, column]:  # every code is taken
        session.execute(update(table).where(table.c.id == row_id).values({column: code}))
    assert session.scalar(select(table.c[column]).where(table.c.id == row_id)) == code


@pytest.mark.parametrize("column", ["actor", "scope"])
def test_the_audit_log_refuses_a_code_its_enum_lacks(session, column):
    """The audit log refuses every UPDATE (append-only), so its codes are tried on INSERT."""
    table, constraint = db.metadata.tables["audit_entries"], f"ck_audit_entries_{column}"
    creditor = make_creditor("NO")
    row = {"at": utcnow(), "actor": "operator", "scope": "creditor", "creditor_id": creditor.id, "action": "x",
           "detail": {}}
    session.execute(insert(table).values(row))
    bogus = {**row, column: "bogus"} | ({"creditor_id": None} if column == "scope" else {})  # no other CHECK fails
    with pytest.raises(IntegrityError, match=constraint), session.begin_nested():
        session.execute(insert(table).values(bogus))


# --- the migration, down and up -------------------------------------------------------------------

@pytest.fixture
def fresh_app(app, tmp_path):
    """An app on a database of its own (SQLite: a new file; PostgreSQL: a new schema), not migrated."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    schema = None
    if url.startswith("postgresql"):
        schema = f"migrations_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    else:
        url = f"sqlite:///{tmp_path}/migrations.db"
    settings = ("TESTING", "PORTAL_ENV", "SECRET_KEY", "LINK_SIGNING_KEYS", "DATA_ENCRYPTION_KEYS", "PORTAL_BASE_URL",
                "RATELIMIT_STORAGE_URI", "SERVER_NAME")
    fresh = create_app({**{name: app.config[name] for name in settings}, "SQLALCHEMY_DATABASE_URI": url})
    yield fresh
    with fresh.app_context():
        db.session.remove()
        db.engine.dispose()
    if schema:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


def _enum_checks() -> set[str]:
    names = set()
    for table in {table for table, _column in CHECKED_BY_0008}:
        names |= {c["name"] for c in inspect(db.engine).get_check_constraints(table)}
    return names & {f"ck_{table}_{column}" for table, column in CHECKED_BY_0008}


def _old_invoice_with_lines(lines: int) -> int:
    """A creditor, a customer and an invoice with its lines and an event, written with the tables as
    the database has them now (an older revision's: the models may have columns it lacks)."""
    tables = MetaData()
    tables.reflect(db.engine, only=("creditors", "customers", "invoices", "invoice_lines", "invoice_events"))
    now, today = utcnow(), date.today()
    with db.engine.begin() as conn:
        def add(table: str, **values) -> int:
            return conn.execute(insert(tables.tables[table]).values(values)).inserted_primary_key[0]

        creditor = add("creditors", slug="old", name="Old AS", country="NO", default_locale="nb", currency="NOK",
                       brand_primary="#1f4b99", brand_accent="#0b6e4f", reference_scheme="kid_mod10",
                       step_up_mode="none", created_at=now, updated_at=now)
        customer = add("customers", creditor_id=creditor, external_ref="C-1", name="Kari", kind="consumer",
                       created_at=now, updated_at=now)
        invoice = add("invoices", public_id="old-invoice", creditor_id=creditor, customer_id=customer, number="1",
                      issue_date=today, due_date=today, currency="NOK", payment_reference="1", status="open",
                      subtotal=300, vat_total=0, total=300, amount_paid=0, created_at=now, updated_at=now)
        for position in range(1, lines + 1):
            add("invoice_lines", invoice_id=invoice, position=position, kind="product", description="x",
                quantity=Decimal(1), unit_price=100, vat_rate=0, net=100, vat=0, gross=100)
        add("invoice_events", invoice_id=invoice, kind="created", actor="test", data={}, created_at=now)
    return invoice


def _rows() -> dict[str, int]:
    with db.engine.connect() as conn:
        return {table: conn.scalar(select(func.count()).select_from(db.metadata.tables[table]))
                for table in ("creditors", "customers", "invoices", "invoice_lines", "invoice_events")}


def _bogus_status_taken(invoice_id: int) -> bool:
    """Whether the database takes a status no enum has (the attempt is rolled back either way)."""
    invoices = db.metadata.tables["invoices"]
    with db.engine.connect() as conn:
        try:
            conn.execute(update(invoices).where(invoices.c.id == invoice_id).values(status="bogus"))
        except IntegrityError:
            return False
        finally:
            conn.rollback()
    return True


def test_the_check_migration_goes_down_and_up_and_keeps_the_rows(fresh_app):
    """On SQLite, batch mode copies each table; foreign keys are off meanwhile (migrations/env.py),
    else dropping the old invoices table would delete every invoice's lines and events."""
    everything = {f"ck_{table}_{column}" for table, column in CHECKED_BY_0008}
    with fresh_app.app_context():
        upgrade(revision=BEFORE_CHECKS)
        invoice_id = _old_invoice_with_lines(3)
        rows = _rows()
        assert rows["invoice_lines"] == 3 and rows["invoice_events"] >= 1
        assert _enum_checks() == set() and _bogus_status_taken(invoice_id)

        upgrade()
        assert _enum_checks() == everything and _rows() == rows and not _bogus_status_taken(invoice_id)

        downgrade(revision=BEFORE_CHECKS)
        assert _enum_checks() == set() and _rows() == rows and _bogus_status_taken(invoice_id)

        upgrade()
        assert _enum_checks() == everything and _rows() == rows and not _bogus_status_taken(invoice_id)
        with db.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(InvoiceLine.__table__)) == 3
            if conn.dialect.name == "sqlite":  # the connections go back to the pool with foreign keys on
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_migration_0009_fills_in_the_audit_logs_actor_and_scope_and_closes_it(fresh_app):
    """Entries written before 0009 get an actor and a scope from what they hold; after it, no UPDATE gets
    through (0006 let a SET NULL of the agent through); down again, 0006's trigger is back."""
    def entry(conn, action, agent_id):
        conn.execute(text("INSERT INTO audit_entries (at, agent_id, creditor_id, action, detail) "
                          "VALUES ('2026-11-30 12:00:00+00:00', :agent, NULL, :action, '{}')"),
                     {"agent": agent_id, "action": action})

    with fresh_app.app_context():
        upgrade(revision="0008")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO agents (email, name, password_hash, created_at) "
                              "VALUES ('ola@example.test', 'Ola', 'x', '2026-11-30 12:00:00+00:00')"))
            agent_id = conn.scalar(text("SELECT id FROM agents"))
            entry(conn, "sign_in", agent_id)
            entry(conn, "customers_searched", agent_id)
            entry(conn, "agent_created", None)
            entry(conn, "sign_in_refused", None)

        upgrade(revision="0009")
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT action, actor, scope FROM audit_entries ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [
            ("sign_in", "agent", "agent"), ("customers_searched", "agent", "creditors"),
            ("agent_created", "operator", "creditors"), ("sign_in_refused", "anonymous", "agent")]
        for statement in ("UPDATE audit_entries SET agent_id = NULL", "DELETE FROM audit_entries",
                          "DELETE FROM agents"):
            with db.engine.connect() as conn, pytest.raises(DBAPIError):  # the trigger, or RESTRICT
                conn.execute(text(statement))

        downgrade(revision="0008")
        with db.engine.connect() as conn:
            assert "actor" not in {c["name"] for c in inspect(conn).get_columns("audit_entries")}
            with pytest.raises(Exception, match="append-only"):
                conn.execute(text("UPDATE audit_entries SET action = 'nothing'"))
            conn.rollback()
            conn.execute(text("UPDATE audit_entries SET agent_id = NULL"))  # 0006's SET NULL, let through again
            conn.rollback()
        upgrade()


def test_migration_0034_gives_the_portals_old_fee_lines_their_text_key(fresh_app):
    """Lines the portal wrote before 0034 (its words in one of its languages, its kind) get their key, so
    pages show them in the reader's language; a creditor's own line with other words keeps none."""
    with fresh_app.app_context():
        upgrade(revision="0030")
        invoice = _old_invoice_with_lines(1)
        lines = MetaData()
        lines.reflect(db.engine, only=("invoice_lines",))
        table = lines.tables["invoice_lines"]
        with db.engine.begin() as conn:
            for position, (kind, words) in enumerate((("reminder_fee", "Mahngebühr"), ("interest", "Forsinkelsesrente"),
                                                      ("other_fee", "Gebühr für den Ratenplan"),
                                                      ("reminder_fee", "Purring nr. 2")), start=2):
                conn.execute(insert(table).values(invoice_id=invoice, position=position, kind=kind, description=words,
                                                  quantity=Decimal(1), unit_price=100, vat_rate=0, net=100, vat=0,
                                                  gross=100))
        upgrade(revision="0034")
        with db.engine.connect() as conn:
            keys = conn.execute(text("SELECT description, text_key FROM invoice_lines ORDER BY position")).all()
        assert [tuple(row) for row in keys] == [("x", None), ("Mahngebühr", "reminder_fee"),
                                                ("Forsinkelsesrente", "default_interest"),
                                                ("Gebühr für den Ratenplan", "plan_fee"), ("Purring nr. 2", None)]
        downgrade(revision="0030")
        upgrade()
