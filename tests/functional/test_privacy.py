"""A data subject's request in the back office (roles, the export as JSON and PDF, erasure with its
warning and confirmation, the audit log) and `flask privacy` on the command line (retention set, the
run twice, job_runs and the audit entry)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.audit import AuditEntry
from app.billing.models import Customer
from app.core.jobs import JobRun
from app.extensions import db
from app.models import utcnow
from app.privacy.rules import add_months
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import EN, enrol, make_agent, post
from tests.unit.privacy.conftest import paid_story


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def story(app, creditor, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "ATTACHMENT_DIR", str(tmp_path))
    with app.test_request_context():
        made = paid_story(creditor, tmp_path)
        db.session.commit()
    return made


def sign_in(app, client, creditor, role):
    agent = make_agent(app, creditor, f"{role}@example.test", role)
    enrol(client, f"{role}@example.test")
    return agent


def page_of(customer):
    return f"/backoffice/customers/{customer.id}/privacy"


def audit_actions(creditor) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.creditor_id == creditor.id)
                                   .order_by(AuditEntry.id)))


def test_an_agent_may_not_and_a_supervisor_may_see_and_export(app, client, creditor, story):
    sign_in(app, client, creditor, "agent")
    assert client.get(page_of(story.customer), headers=EN).status_code == 403
    assert client.get(page_of(story.customer) + "/export.json", headers=EN).status_code == 403
    assert "Personal data: export or erase" not in client.get(f"/backoffice/customers/{story.customer.id}",
                                                              headers=EN).text


def test_a_supervisor_exports_json_and_a_readable_pdf_but_may_not_erase(app, client, creditor, story):
    sign_in(app, client, creditor, "supervisor")
    page = client.get(page_of(story.customer), headers=EN)
    assert page.status_code == 200 and "Only an admin of this creditor can erase" in page.text
    assert "Warning: erasure cannot be undone." in page.text and story.paid.number in page.text
    exported = client.get(page_of(story.customer) + "/export.json", headers=EN)
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    data = json.loads(exported.data)
    assert data["tables"]["customers"]["rows"][0]["email"] == "kari@example.test"
    assert "Per Hansen" in exported.text
    pdf = client.get(page_of(story.customer) + "/export.pdf", headers=EN)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    for words in ("Personal data held about Kari Nordmann", "kari@example.test", "Messages", "Per Hansen",
                  story.paid.number, "Internal notes"):
        assert words in text, words
    norsk = client.get(page_of(story.customer) + "/export.pdf?lang=nb", headers=EN)
    assert "Personopplysninger" in " ".join(p.extract_text() for p in PdfReader(io.BytesIO(norsk.data)).pages)
    assert post(client, page_of(story.customer) + "/erase", {"understood": "y",
                                                             "customer_number": "C-1"}).status_code == 403
    entries = audit_actions(creditor)
    assert [e.action for e in entries if e.action.startswith("privacy")] == [
        "privacy_viewed", "privacy_exported", "privacy_exported", "privacy_exported"]
    assert all("kari" not in json.dumps(e.detail).lower() for e in entries)


def test_an_admin_erases_after_confirming_and_the_invoice_is_kept(app, client, creditor, story):
    sign_in(app, client, creditor, "admin")
    url = page_of(story.customer) + "/erase"
    unconfirmed = post(client, url, {"customer_number": "C-1"}, page=page_of(story.customer))
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    wrong = post(client, url, {"understood": "y", "customer_number": "C-2"}, page=page_of(story.customer))
    assert wrong.status_code == 422
    db.session.expire_all()
    assert db.session.get(Customer, story.customer.id).email == "kari@example.test"

    done = post(client, url, {"understood": "y", "customer_number": "C-1"}, page=page_of(story.customer))
    assert done.status_code == 303
    db.session.expire_all()
    customer = db.session.get(Customer, story.customer.id)
    # the kept invoice keeps the name
    assert (customer.email, customer.phone, customer.name) == (None, None, "Kari Nordmann")
    assert "except the name and address" in client.get(page_of(customer), headers=EN).text
    erased = [e for e in audit_actions(creditor) if e.action == "customer_erased"]
    assert len(erased) == 1 and erased[0].detail["invoices"] == 1 and "kari" not in json.dumps(erased[0].detail).lower()


def test_after_erasure_the_back_office_pages_of_the_customer_still_open(app, client, creditor, story):
    sign_in(app, client, creditor, "admin")
    later = post(client, page_of(story.customer) + "/erase", {"understood": "y", "customer_number": "C-1"},
                 page=page_of(story.customer))
    assert later.status_code == 303
    for path in (f"/backoffice/customers/{story.customer.id}", f"/backoffice/invoices/{story.paid.id}",
                 f"/backoffice/requests/{story.request.reference}", page_of(story.customer),
                 page_of(story.customer) + "/export.json"):
        answer = client.get(path, headers=EN)
        assert answer.status_code == 200, path
        assert "Per Hansen" not in answer.text and "kari@example.test" not in answer.text, path
    letters = client.get(f"/backoffice/customers/{story.customer.id}", headers=EN).text
    letter_ids = set(re.findall(r"/backoffice/letters/(\d+)\.pdf", letters))
    assert letter_ids  # the letter is listed; its printed copy is gone with what it said
    for letter_id in letter_ids:
        assert client.get(f"/backoffice/letters/{letter_id}.pdf", headers=EN).status_code == 404


def test_erasure_is_refused_while_a_bill_is_open(app, client, creditor):
    with app.test_request_context():
        invoice = make_invoice(creditor)
        db.session.commit()
    sign_in(app, client, creditor, "admin")
    page = client.get(page_of(invoice.customer), headers=EN)
    assert "cannot be erased now" in page.text and invoice.number in page.text
    refused = post(client, page_of(invoice.customer) + "/erase", {"understood": "y", "customer_number": "C-1"},
                   page=page_of(invoice.customer))
    assert refused.status_code == 409 and "Nothing was erased" in refused.text
    db.session.expire_all()
    assert db.session.get(Customer, invoice.customer_id).email == "kari@example.test"


def test_the_pages_speak_norwegian_and_german(app, client, creditor, story):
    sign_in(app, client, creditor, "admin")
    assert "Sletting" in client.get(page_of(story.customer) + "?lang=nb").text
    assert "Löschung" in client.get(page_of(story.customer) + "?lang=de").text


# --- the command line -----------------------------------------------------------------------------------


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["privacy", *args])


def test_retention_is_set_and_the_run_twice_changes_nothing_the_second_time(app, creditor, story, tmp_path):
    shown = cli(app, "retention", creditor.slug)
    assert shown.exit_code == 0 and "36 months" in shown.output
    assert cli(app, "retention", creditor.slug, "--months", "0").exit_code != 0
    set_ = cli(app, "retention", creditor.slug, "--months", "2")
    assert set_.exit_code == 0 and "2 months" in set_.output
    day = add_months(utcnow().date(), 3).isoformat()
    first = cli(app, "run", "--date", day)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["invoices"] == 1
    second = cli(app, "run", "--date", day)
    assert json.loads(second.output) == {"anonymised": 0, "customers": 0, "failed_batches": 0, "invoices": 0,
                                         "rows": {}}
    assert db.session.get(JobRun, "privacy").last_success_at > utcnow() - timedelta(minutes=1)
    applied = [e for e in audit_actions(creditor) if e.action == "privacy_retention_applied"]
    assert len(applied) == 1 and applied[0].detail["invoices"] == 1
    assert {"privacy_retention_set"} <= {e.action for e in audit_actions(creditor)}
    assert cli(app, "run", "--date", "2026-13-45").exit_code != 0
