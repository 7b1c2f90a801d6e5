"""Contact support from the bill page (test client): the form, errors, upload limits, the thread, files."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.support.models import Attachment, SupportRequest
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMISSION = re.compile(r'name="submission" value="([^"]+)"')
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EN = {"Accept-Language": "en"}


@pytest.fixture
def bill(client, app, session):
    invoice = make_invoice(make_creditor("NO", default_locale="en"))
    return invoice, open_bill(client, app, invoice)


def fields_of(client, url, headers=EN) -> dict:
    page = client.get(url, headers=headers)
    assert page.status_code == 200
    return {"csrf_token": CSRF.search(page.text).group(1), "submission": SUBMISSION.search(page.text).group(1)}


def send(client, url, fields, headers=EN, **form):
    data = {**fields, "topic": "bill_question", "message": "Why so high?", "contact_method": "email", **form}
    return client.post(f"{url}/contact", data=data, content_type="multipart/form-data", headers=headers)


def stored_files(app) -> set[Path]:
    return set(Path(app.config["ATTACHMENT_DIR"]).rglob("*"))


def requests() -> int:
    return db.session.scalar(select(func.count()).select_from(SupportRequest))


def test_contact_gives_a_reference_and_shows_the_thread_on_the_bill(client, bill):
    invoice, url = bill
    fields = fields_of(client, f"{url}/contact")
    first = send(client, url, fields)
    second = send(client, url, fields)  # a double submit
    assert first.status_code == second.status_code == 303 and first.headers["Location"] == second.headers["Location"]
    assert requests() == 1
    page = client.get(first.headers["Location"], headers=EN)
    reference = db.session.scalar(select(SupportRequest.reference))
    assert "Thank you, we have your message" in page.text and reference in page.text
    bill_page = client.get(url, headers=EN)
    assert "Your messages" in bill_page.text and "Why so high?" in bill_page.text


@pytest.mark.parametrize(("lang", "words"), [
    ("en", "Please write your message."), ("nb", "Skriv meldingen din."), ("de", "Bitte schreiben Sie Ihre Nachricht."),
])
def test_errors_are_translated_and_next_to_the_field(client, bill, lang, words):
    invoice, url = bill
    fields = fields_of(client, f"{url}/contact?lang={lang}", headers={})
    answer = send(client, url, fields, headers={}, message="")
    assert answer.status_code == 422 and 'id="message-error"' in answer.text and words in answer.text
    assert requests() == 0


def test_an_executable_renamed_pdf_is_refused(client, bill):
    invoice, url = bill
    answer = send(client, url, fields_of(client, f"{url}/contact"),
                  attachment=(io.BytesIO(b"MZ\x90\x00" + b"\0" * 500), "invoice.pdf"))
    assert answer.status_code == 422 and 'id="attachment-error"' in answer.text
    assert "Please attach a PDF, JPEG or PNG file." in answer.text and requests() == 0


def test_a_6_mb_upload_gets_the_field_error_and_stores_nothing(client, app, bill):
    invoice, url = bill
    big = PDF[:-7] + b"\0" * (6 * 1024 * 1024) + b"%%EOF\n"
    stored_before = stored_files(app)
    answer = send(client, url, fields_of(client, f"{url}/contact"), attachment=(io.BytesIO(big), "scan.pdf"))
    assert answer.status_code == 422 and "larger than 5 MB" in answer.text
    assert requests() == 0 and stored_files(app) == stored_before


def test_a_far_too_large_body_gets_the_translated_413_page(client, bill):
    invoice, url = bill
    huge = b"\0" * (12 * 1024 * 1024)
    answer = send(client, url, fields_of(client, f"{url}/contact"), attachment=(io.BytesIO(huge), "scan.pdf"))
    assert answer.status_code == 413 and requests() == 0


def test_a_pdf_is_stored_outside_static_and_only_ever_downloaded(client, app, bill):
    invoice, url = bill
    answer = send(client, url, fields_of(client, f"{url}/contact"), attachment=(io.BytesIO(PDF), "kvittering.pdf"))
    assert answer.status_code == 303
    attachment = db.session.scalar(select(Attachment))
    stored = Path(app.config["ATTACHMENT_DIR"]) / str(invoice.creditor_id) / attachment.storage_key
    assert stored.read_bytes() == PDF and "static" not in stored.parts
    download = client.get(f"{url}/attachments/{attachment.public_ref}")
    assert download.status_code == 200 and download.data == PDF
    assert download.mimetype == "application/octet-stream"
    assert download.headers["Content-Disposition"] == 'attachment; filename="kvittering.pdf"'
    assert download.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in download.headers["Content-Security-Policy"]


def test_another_bills_request_and_attachment_are_the_neutral_page(client, app, bill):
    invoice, url = bill
    send(client, url, fields_of(client, f"{url}/contact"), attachment=(io.BytesIO(PDF), "a.pdf"))
    request = db.session.scalar(select(SupportRequest))
    attachment = db.session.scalar(select(Attachment))
    other_url = open_bill(client, app, make_invoice(invoice.creditor))
    assert client.get(f"{other_url}/contact/{request.reference}").status_code == 404
    assert client.get(f"{other_url}/attachments/{attachment.public_ref}").status_code == 404


def test_script_in_a_message_is_shown_as_text_on_the_bill_and_the_thread(client, bill):
    invoice, url = bill
    done = send(client, url, fields_of(client, f"{url}/contact"), message='<script>alert("x")</script>')
    for page in (client.get(done.headers["Location"], headers=EN), client.get(url, headers=EN)):
        assert '<script>alert("x")</script>' not in page.text and "&lt;script&gt;" in page.text


def test_the_customer_writes_again_in_the_thread(client, bill):
    invoice, url = bill
    done = send(client, url, fields_of(client, f"{url}/contact"))
    thread = done.headers["Location"]
    fields = fields_of(client, thread)
    again = client.post(f"{thread}/messages", data={**fields, "message": "Any news?"}, content_type="multipart/form-data")
    assert again.status_code == 303
    page = client.get(again.headers["Location"], headers=EN)
    assert "Any news?" in page.text and "Your message has been sent." in page.text


def test_without_a_csrf_token_nothing_is_stored(client, bill):
    invoice, url = bill
    fields = fields_of(client, f"{url}/contact")
    answer = send(client, url, {"submission": fields["submission"]})
    assert answer.status_code == 400 and requests() == 0


def test_posts_are_rate_limited(client, app, bill):
    invoice, url = bill
    app.config["SELF_SERVICE_RATE_LIMIT"] = "2 per minute"
    try:
        fields = fields_of(client, f"{url}/contact")
        codes = [send(client, url, fields, message="").status_code for _ in range(3)]
    finally:
        app.config["SELF_SERVICE_RATE_LIMIT"] = "10 per minute; 60 per hour"
    assert codes == [422, 422, 429]
