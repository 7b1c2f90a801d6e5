"""The audit log's entries carry the creditors they concern and are read only within the reader's
scope: what an agent typed while searching several creditors is read only by someone who may read
all of them. The database keeps every entry's agent and creditor: no UPDATE or DELETE, no SET NULL,
and an agent or creditor with entries cannot be deleted (on SQLite and PostgreSQL alike)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.audit import AuditEntry, AuditEntryCreditor, AuditScope
from app.backoffice.models import Agent
from app.creditors.models import Creditor
from app.extensions import db
from tests.factories import make_creditor
from tests.functional.agents import EN, cli, enrol, make_agent

SEARCHED = "bob.secret@b-customer.example"


@pytest.fixture
def creditors(app, session):
    a, b = make_creditor("NO"), make_creditor("DE")
    db.session.commit()
    return a, b


def grant(app, email, creditor, role):
    assert cli(app, "grant", email, "--creditor", creditor.slug, "--role", role).exit_code == 0


def test_a_supervisor_of_one_creditor_does_not_read_what_an_agent_searched_across_another(app, creditors):
    a, b = creditors
    make_agent(app, a, "ola@example.test")  # works for both
    grant(app, "ola@example.test", b, "agent")
    worker = app.test_client()
    enrol(worker, "ola@example.test")
    assert worker.get(f"/backoffice/search?q={SEARCHED}", headers=EN).status_code == 200
    assert worker.get(f"/backoffice/?q={SEARCHED}", headers=EN).status_code == 200
    mine_only = "kari.mine@a-customer.example"
    assert worker.get(f"/backoffice/search?q={mine_only}&creditor={a.id}", headers=EN).status_code == 200

    make_agent(app, a, "sup.a@example.test", "supervisor")  # creditor A's supervisor only
    reader_a = app.test_client()
    enrol(reader_a, "sup.a@example.test")
    page = reader_a.get("/backoffice/audit", headers=EN)
    assert page.status_code == 200 and SEARCHED not in page.text
    assert mine_only in page.text  # a search in A alone is A's
    assert "sign_in" in page.text  # the agent's signing in: no customer's data
    assert SEARCHED not in reader_a.get("/backoffice/audit.csv").text

    make_agent(app, a, "sup.ab@example.test", "supervisor")  # supervises both: reads all of it
    grant(app, "sup.ab@example.test", b, "supervisor")
    reader_ab = app.test_client()
    enrol(reader_ab, "sup.ab@example.test")
    both = reader_ab.get("/backoffice/audit", headers=EN).text
    assert both.count(SEARCHED) == 2 and a.slug in both and b.slug in both  # the search and the inbox's filter

    searched = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "customers_searched",
                                                          AuditEntry.scope == AuditScope.CREDITORS))
    assert searched.creditor_id is None and sorted(c.creditor_id for c in searched.creditors) == sorted([a.id, b.id])


def test_another_creditors_supervisor_reads_nothing_of_ours(app, creditors):
    a, b = creditors
    make_agent(app, a, "ola@example.test")
    worker = app.test_client()
    enrol(worker, "ola@example.test")
    worker.get("/backoffice/search?q=Kari", headers=EN)
    make_agent(app, b, "sup.b@example.test", "supervisor")
    reader_b = app.test_client()
    enrol(reader_b, "sup.b@example.test")
    page = reader_b.get("/backoffice/audit", headers=EN).text
    assert "ola@example.test" not in page and "Kari" not in page


# --- the database keeps every entry whole -----------------------------------------------------------


def _refused(session, statement) -> str:
    with pytest.raises((IntegrityError, DBAPIError)) as refused, session.begin_nested():
        session.execute(statement)
    return str(refused.value)


def test_the_database_refuses_to_take_an_entrys_agent_or_creditor_away(app, session, creditors):
    a, b = creditors
    agent = make_agent(app, a, "ola@example.test")
    entries = AuditEntry.__table__
    with app.test_request_context():
        from app.audit import audit

        one = audit(agent, "customer_viewed", creditor_id=a.id, record_type="customer", record_id="C-1")
        several = audit(agent, "customers_searched", creditor_ids=[a.id, b.id], q="x")
        db.session.flush()

    for values in ({"agent_id": None}, {"creditor_id": None}, {"action": "nothing"}):
        assert "append-only" in _refused(session, update(entries).where(entries.c.id == one.id).values(values))
    assert "append-only" in _refused(session, delete(entries).where(entries.c.id == one.id))
    links = AuditEntryCreditor.__table__
    assert "append-only" in _refused(session, delete(links).where(links.c.entry_id == several.id))
    assert "append-only" in _refused(session, update(links).where(links.c.entry_id == several.id)
                                     .values(creditor_id=b.id if several.creditors[0].creditor_id == a.id else a.id))

    # an entry of an agent names the agent, an entry of a creditor names it (even written straight in SQL)
    row = {"at": one.at, "action": "x", "detail": {}}
    assert "ck_audit_entries_agent_of_actor" in _refused(session, insert(entries).values(
        {**row, "actor": "agent", "scope": "agent", "agent_id": None}))
    assert "ck_audit_entries_creditor_of_scope" in _refused(session, insert(entries).values(
        {**row, "actor": "agent", "scope": "creditor", "agent_id": agent.id, "creditor_id": None}))

    # and what an entry names cannot be deleted under it
    _refused(session, delete(Agent.__table__).where(Agent.__table__.c.id == agent.id))
    _refused(session, delete(Creditor.__table__).where(Creditor.__table__.c.id == b.id))
    assert session.get(AuditEntry, one.id).agent_id == agent.id
    assert session.get(AuditEntry, one.id).creditor_id == a.id
