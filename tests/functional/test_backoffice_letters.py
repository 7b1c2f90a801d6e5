"""A customer's letters in the back office: listed on their page; the PDF as printed (the manifest's
checksum) for supervisors and admins; "print again" for every agent of the creditor, with CSRF, into
the next batch with a new link; another creditor's letter is a 404; each step audited."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from app.audit import AuditEntry
from app.dunning.letters.models import LetterPrint
from app.dunning.models import Letter, LetterStatus
from app.extensions import db
from app.links.models import AccessLink
from tests.functional.agents import EN, actions, enrol, make_agent, post
from tests.functional.dunning.letters import letter_bills, print_day
from tests.unit.dunning.conftest import TODAY, creditor_with_plan


def printed_letter(app):
    """A creditor whose customer's letter was printed in today's batch."""
    with app.test_request_context():
        creditor, plan = creditor_with_plan("NO", "NO")
        invoice = letter_bills(creditor, plan)[0]
        (printed,) = print_day()
        db.session.commit()
    return creditor, invoice, db.session.get(Letter, printed.print.letter_id)


def sign_in(app, client, creditor, role, email="ola@example.test"):
    agent = make_agent(app, creditor, email, role)
    enrol(client, email)
    return agent


def test_a_supervisor_sees_the_letters_downloads_one_as_printed_and_has_it_printed_again(app, client, session):
    creditor, invoice, letter = printed_letter(app)
    supervisor = sign_in(app, client, creditor, "supervisor")
    page = client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN)
    assert page.status_code == 200 and "Letters" in page.text and "Print again" in page.text
    assert f"/backoffice/letters/{letter.id}.pdf" in page.text and letter.sha256[:12] in page.text

    pdf = client.get(f"/backoffice/letters/{letter.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert hashlib.sha256(pdf.data).hexdigest() == letter.sha256  # the very file the print service got
    assert pdf.headers["Cache-Control"] == "no-store"

    done = post(client, f"/backoffice/letters/{letter.id}/reprint")
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/customers/{invoice.customer_id}")
    db.session.refresh(letter)
    assert letter.status == LetterStatus.PENDING and letter.reprint_requested_by == f"agent:{supervisor.id}"
    assert "To be printed again in the next batch" in client.get(done.headers["Location"], headers=EN).text
    again = post(client, f"/backoffice/letters/{letter.id}/reprint")  # not printed since: refused, nothing changes
    assert again.status_code == 303 and "Only a printed letter can be printed again" in client.get(
        again.headers["Location"], headers=EN).text
    done_by = [a for a in actions(supervisor) if a.startswith("letter_")]
    assert done_by == ["letter_downloaded", "letter_reprint_requested"]  # the refused one is not recorded as done
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "letter_downloaded")).one()
    assert (entry.creditor_id, entry.record_type, entry.record_id) == (creditor.id, "letter", str(letter.id))

    with app.test_request_context():
        (second,) = print_day(TODAY)
        db.session.commit()
    first_link = db.session.scalars(select(LetterPrint.link_id).where(LetterPrint.letter_id == letter.id)
                                    .order_by(LetterPrint.id)).first()
    assert db.session.get(AccessLink, first_link).revoked_at is not None and second.print.link_id != first_link


def test_an_agent_may_print_again_but_not_download_the_live_code(app, client, session):
    creditor, invoice, letter = printed_letter(app)
    agent = sign_in(app, client, creditor, "agent")
    page = client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN)
    assert "Print again" in page.text and f"/backoffice/letters/{letter.id}.pdf" not in page.text
    assert client.get(f"/backoffice/letters/{letter.id}.pdf").status_code == 403
    assert post(client, f"/backoffice/letters/{letter.id}/reprint").status_code == 303
    assert db.session.get(Letter, letter.id).status == LetterStatus.PENDING
    assert "letter_reprint_requested" in actions(agent) and "letter_downloaded" not in actions(agent)


def test_another_creditors_letter_is_not_found_and_a_post_needs_its_csrf_token(app, client, session):
    _creditor, _invoice, letter = printed_letter(app)
    other, _other_invoice, other_letter = printed_letter(app)
    sign_in(app, client, other, "admin")
    assert client.get(f"/backoffice/letters/{letter.id}.pdf").status_code == 404
    assert post(client, f"/backoffice/letters/{letter.id}/reprint").status_code == 404
    assert client.post(f"/backoffice/letters/{other_letter.id}/reprint").status_code == 400  # no CSRF token
    assert db.session.get(Letter, other_letter.id).status == LetterStatus.PRINTED


@pytest.mark.parametrize("path", ["/backoffice/letters/{id}.pdf"])
def test_signed_out_the_letter_asks_for_sign_in(app, client, session, path):
    _creditor, _invoice, letter = printed_letter(app)
    answer = client.get(path.format(id=letter.id))
    assert answer.status_code in (302, 303) and "sign-in" in answer.headers["Location"]
