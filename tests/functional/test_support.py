"""Contact support from the bill page (test client): the form and its errors in every language,
upload limits, one request per submit, the thread, files only ever downloaded, the neutral page
for anything of another bill, CSRF, rate limits, and `flask support`."""

from __future__ import annotations

import io
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.billing.services import transition
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.support.models import Attachment, RequestStatus, SupportMessage, SupportRequest
from app.support.services import reply
from tests.factories import creditor_today, make_creditor, make_invoice
from tests.functional.helpers import open_bill

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMISSION = re.compile(r'name="submission" value="([^"]+)"')
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\0" * 500  # a Windows program's first bytes
EN = {"Accept-Language": "en"}


@pytest.fixture
def bill(client, app, session):
    """(invoice, bill page path) of a Norwegian creditor whose pages are in English unless switched."""
    invoice = make_invoice(make_creditor("NO", default_locale="en"))
    return invoice, open_bill(client, app, invoice)


def form_fields(client, url, headers=EN) -> dict:
    """The hidden fields of the form on the page at `url` (CSRF token and one-time submission key)."""
    page = client.get(url, headers=headers)
    assert page.status_code == 200, page.status_code
    return {"csrf_token": CSRF.search(page.text).group(1), "submission": SUBMISSION.search(page.text).group(1)}


def send(client, url, fields, headers=EN, **form):
    """POST the contact form of the bill at `url`: a question about the bill, answered by e-mail."""
    data = {**fields, "topic": "bill_question", "message": "Why so high?", "contact_method": "email",
            "email": "kari@example.test", **form}
    return client.post(f"{url}/contact", data=data, content_type="multipart/form-data", headers=headers)


def write_again(client, thread, fields, headers=EN, **form):
    data = {**fields, "message": "Any news?", **form}
    return client.post(f"{thread}/messages", data=data, content_type="multipart/form-data", headers=headers)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def stored_files(app) -> set[Path]:
    return {path for path in Path(app.config["ATTACHMENT_DIR"]).rglob("*") if path.is_file()}


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    return found.group(1).strip() if found else None


# --- the form -------------------------------------------------------------------------------------


def test_the_form_is_pre_filled_and_takes_the_topic_from_the_bill_page(client, bill):
    invoice, url = bill
    page = client.get(f"{url}/contact?topic=already_paid", headers=EN)
    assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
    html = page.text
    assert 'enctype="multipart/form-data"' in html and "novalidate" in html
    assert re.findall(r'value="(\w+)" checked', html) == ["already_paid", "email"]
    assert 'value="kari@example.test"' in html and 'value="+4791234567"' in html
    assert invoice.number in html and 'id="form-errors"' not in html
    unknown_topic = client.get(f"{url}/contact?topic=<b>", headers=EN).text
    assert re.findall(r'value="(\w+)" checked', unknown_topic) == ["email"]


def test_contact_gives_a_reference_and_the_thread_shows_on_the_bill(client, bill):
    _invoice, url = bill
    assert "Your messages" not in client.get(url, headers=EN).text  # cached now: the request must show anyway
    done = send(client, url, form_fields(client, f"{url}/contact"))
    assert done.status_code == 303
    found = db.session.scalar(select(SupportRequest))
    assert done.headers["Location"] == f"{url}/contact/{found.reference}"
    page = client.get(done.headers["Location"], headers=EN)
    assert "Thank you, we have your message" in page.text and f"Your reference is {found.reference}." in page.text
    assert "We will answer you by e-mail, usually within two working days." in page.text
    bill_page = client.get(url, headers=EN).text
    assert "Your messages" in bill_page and "Why so high?" in bill_page and found.reference in bill_page
    assert "Waiting for our answer" in bill_page and f"{url}/contact/{found.reference}#h-write" in bill_page
    sent = db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()
    assert sent == ["support.received", "support.notification"]


SLOT = re.compile(r'<option value="(\d{4}-\d{2}-\d{2})/(morning|afternoon|evening)"')


def test_a_call_back_is_confirmed_with_its_day_and_window(client, bill):
    _invoice, url = bill
    page = client.get(f"{url}/contact", headers=EN).text
    offered = SLOT.findall(page)
    day, window = next((d, w) for d, w in offered if w == "afternoon")
    done = send(client, url, form_fields(client, f"{url}/contact"), contact_method="phone", phone="912 34 567",
                callback_slot=f"{day}/{window}", email="")
    assert done.status_code == 303
    found = db.session.scalar(select(SupportRequest))
    assert (found.contact_phone, found.callback_date.isoformat(), found.callback_window) == ("91234567", day, window)
    page = client.get(done.headers["Location"], headers=EN).text
    assert "We will call you at 91234567 on" in page and "between 12:00 and 4:00 pm." in page


def test_a_double_submit_makes_one_request(client, bill):
    _invoice, url = bill
    fields = form_fields(client, f"{url}/contact")
    first, second = send(client, url, fields), send(client, url, fields, attachment=(io.BytesIO(PDF), "a.pdf"))
    assert first.status_code == second.status_code == 303 and first.headers["Location"] == second.headers["Location"]
    assert (count(SupportRequest), count(SupportMessage), count(Attachment), count(OutboxMessage)) == (1, 1, 0, 2)


# --- errors next to their fields, in every language ----------------------------------------------------

ERRORS = {
    "message": ({"message": " "}, {
        "en": "Please write your message.", "nb": "Skriv meldingen din.", "de": "Bitte schreiben Sie Ihre Nachricht."}),
    "topic": ({"topic": ""}, {
        "en": "Please choose what it is about.", "nb": "Velg hva det gjelder.",
        "de": "Bitte wählen Sie, worum es geht."}),
    "email": ({"email": "kari@"}, {
        "en": "Please enter a valid e-mail address, such as name@example.com.",
        "nb": "Skriv inn en gyldig e-postadresse, for eksempel navn@eksempel.no.",
        "de": "Bitte geben Sie eine gültige E-Mail-Adresse ein, zum Beispiel name@beispiel.de."}),
    "phone": ({"contact_method": "phone", "phone": "", "callback_slot": ""}, {
        "en": "Please enter the number we should call.", "nb": "Skriv inn nummeret vi skal ringe.",
        "de": "Bitte geben Sie die Nummer ein, unter der wir Sie anrufen sollen."}),
    "callback_slot": ({"contact_method": "phone",
                       "callback_slot": f"{(creditor_today('NO') + timedelta(days=15)).isoformat()}/morning"}, {
        "en": "Please choose one of the times offered, within the next 14 days.",
        "nb": "Velg et av tidspunktene vi tilbyr, innen de neste 14 dagene.",
        "de": "Bitte wählen Sie eine der angebotenen Zeiten in den nächsten 14 Tagen."}),
    "attachment": ({"attachment": (EXECUTABLE, "invoice.pdf")}, {
        "en": "Please attach a PDF, JPEG or PNG file.", "nb": "Legg ved en PDF-, JPEG- eller PNG-fil.",
        "de": "Bitte hängen Sie eine PDF-, JPEG- oder PNG-Datei an."}),
}
SUMMARY = {"en": "Please check the fields marked below.", "nb": "Se over feltene som er merket nedenfor.",
           "de": "Bitte prüfen Sie die unten markierten Felder."}


@pytest.mark.parametrize("lang", ["en", "nb", "de"])
@pytest.mark.parametrize("field", list(ERRORS))
def test_each_error_is_translated_and_shown_next_to_its_field(client, app, bill, lang, field):
    _invoice, url = bill
    fields = form_fields(client, f"{url}/contact?lang={lang}", headers={})
    data, words = ERRORS[field]
    data = {k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}
    before = stored_files(app)
    answer = send(client, url, fields, headers={}, **data)
    assert answer.status_code == 422
    assert field_error(answer.text, field) == words[lang]
    assert re.search(rf'aria-describedby="[^"]*{field}-error"', answer.text)
    assert SUMMARY[lang] in answer.text and f'lang="{lang}"' in answer.text
    assert count(SupportRequest) == 0 and count(OutboxMessage) == 0 and stored_files(app) == before


def test_every_problem_shows_at_once_the_files_with_the_others(client, bill):
    _invoice, url = bill
    answer = send(client, url, form_fields(client, f"{url}/contact"), message="", topic="",
                  attachment=(io.BytesIO(b"\x7fELF\x02\x01\x01" + b"\0" * 64), "receipt.pdf"))
    assert answer.status_code == 422
    assert [field_error(answer.text, f) for f in ("topic", "message", "attachment")] == [
        ERRORS["topic"][1]["en"], ERRORS["message"][1]["en"], ERRORS["attachment"][1]["en"]]
    assert 'value="kari@example.test"' in answer.text  # what was typed stays


# --- files ------------------------------------------------------------------------------------------


def test_a_6_mb_upload_gets_the_field_error_and_stores_nothing(client, app, bill):
    _invoice, url = bill
    big = PDF[:-6] + b"\0" * (6 * 1024 * 1024) + b"%%EOF\n"
    before = stored_files(app)
    answer = send(client, url, form_fields(client, f"{url}/contact"), attachment=(io.BytesIO(big), "scan.pdf"))
    assert answer.status_code == 422
    assert field_error(answer.text, "attachment") == "The file is larger than 5 MB. Please attach a smaller one."
    assert count(SupportRequest) == 0 and count(Attachment) == 0 and stored_files(app) == before


def test_an_empty_file_is_refused(client, bill):
    _invoice, url = bill
    answer = send(client, url, form_fields(client, f"{url}/contact"), attachment=(io.BytesIO(b""), "scan.pdf"))
    assert answer.status_code == 422 and field_error(answer.text, "attachment") == (
        "The file is empty. Please attach another one.")


def test_a_far_too_large_body_gets_the_translated_413_page(client, bill):
    _invoice, url = bill
    fields = form_fields(client, f"{url}/contact?lang=nb", headers={})
    huge = b"\0" * (12 * 1024 * 1024)
    answer = send(client, url, fields, headers={}, attachment=(io.BytesIO(huge), "scan.pdf"))
    assert answer.status_code == 413 and "Det var for stort" in answer.text and count(SupportRequest) == 0


def test_a_pdf_is_stored_outside_static_and_only_ever_downloaded(client, app, bill):
    invoice, url = bill
    answer = send(client, url, form_fields(client, f"{url}/contact"), attachment=(io.BytesIO(PDF), "kvittering.pdf"))
    assert answer.status_code == 303
    attachment = db.session.scalar(select(Attachment))
    stored = Path(app.config["ATTACHMENT_DIR"]) / str(invoice.creditor_id) / attachment.storage_key
    assert stored.read_bytes() == PDF and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert not stored.resolve().is_relative_to(Path(app.static_folder).resolve())
    assert stored.resolve().is_relative_to(Path(app.instance_path).resolve())
    assert (attachment.filename, attachment.mime, attachment.size) == ("kvittering.pdf", "application/pdf", len(PDF))
    thread = client.get(answer.headers["Location"], headers=EN).text
    link = f"{url}/attachments/{attachment.public_ref}"
    assert f'href="{link}" download' in thread
    download = client.get(link)
    assert download.status_code == 200 and download.data == PDF
    assert download.mimetype == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "kvittering.pdf" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "no-store" in download.headers["Cache-Control"]


def test_an_image_keeps_its_real_type_whatever_its_name(client, bill):
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    _invoice, url = bill
    answer = send(client, url, form_fields(client, f"{url}/contact"), attachment=(io.BytesIO(png.getvalue()), "x.pdf"))
    assert answer.status_code == 303
    attachment = db.session.scalar(select(Attachment))
    assert (attachment.filename, attachment.mime) == ("x.png", "image/png")
    assert client.get(f"{url}/attachments/{attachment.public_ref}").mimetype == "application/octet-stream"


# --- another bill, no grant, a closed bill -------------------------------------------------------------


def test_another_bills_request_and_attachment_are_the_neutral_page(client, app, bill):
    invoice, url = bill
    send(client, url, form_fields(client, f"{url}/contact"), attachment=(io.BytesIO(PDF), "a.pdf"))
    request = db.session.scalar(select(SupportRequest))
    attachment = db.session.scalar(select(Attachment))
    other_url = open_bill(client, app, make_invoice(invoice.creditor))
    assert client.get(f"{other_url}/contact/{request.reference}").status_code == 404
    assert client.get(f"{other_url}/attachments/{attachment.public_ref}").status_code == 404
    assert client.get(f"{url}/contact/S-NOTHERE").status_code == 404
    assert client.get(f"{url}/attachments/nothing").status_code == 404
    fields = form_fields(client, f"{url}/contact/{request.reference}")
    assert write_again(client, f"{other_url}/contact/{request.reference}", fields).status_code == 404
    assert count(SupportMessage) == 1


def test_without_the_bills_grant_the_pages_are_neutral(client, app, bill):
    invoice, url = bill
    send(client, url, form_fields(client, f"{url}/contact"), attachment=(io.BytesIO(PDF), "a.pdf"))
    reference = db.session.scalar(select(SupportRequest.reference))
    public_ref = db.session.scalar(select(Attachment.public_ref))
    stranger = app.test_client()
    for path in (f"{url}/contact", f"{url}/contact/{reference}", f"{url}/attachments/{public_ref}"):
        page = stranger.get(path)
        assert page.status_code == 404 and "Why so high?" not in page.text and invoice.number not in page.text


def test_a_cancelled_bill_takes_no_more_messages(client, bill, session):
    invoice, url = bill
    fields = form_fields(client, f"{url}/contact")
    transition(invoice, InvoiceStatus.CANCELLED, actor="test")
    session.commit()
    assert client.get(f"{url}/contact").status_code == 404
    assert send(client, url, fields).status_code == 404 and count(SupportRequest) == 0


# --- the thread ---------------------------------------------------------------------------------------


def test_script_in_a_message_is_shown_as_text_on_the_thread_and_the_bill(client, bill):
    _invoice, url = bill
    done = send(client, url, form_fields(client, f"{url}/contact"), message='<script>alert("x")</script>')
    for page in (client.get(done.headers["Location"], headers=EN), client.get(url, headers=EN)):
        assert '<script>alert("x")</script>' not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text


def test_the_customer_writes_again_once_per_submit(client, bill):
    _invoice, url = bill
    thread = send(client, url, form_fields(client, f"{url}/contact")).headers["Location"]
    fields = form_fields(client, thread)
    first = write_again(client, thread, fields, attachment=(io.BytesIO(PDF), "proof.pdf"))
    second = write_again(client, thread, fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == f"{thread}?sent=1#latest"
    assert (count(SupportMessage), count(Attachment)) == (2, 1)
    page = client.get(first.headers["Location"], headers=EN).text
    assert "Any news?" in page and "Your message has been sent." in page and "proof.pdf" in page
    sent = db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()
    assert sent[-1] == "support.notification"  # by id: PostgreSQL returns an updated row in any order


def test_writing_again_needs_words_and_an_open_conversation(client, bill, session):
    _invoice, url = bill
    thread = send(client, url, form_fields(client, f"{url}/contact")).headers["Location"]
    fields = form_fields(client, thread)
    empty = write_again(client, thread, fields, message="  ", attachment=(io.BytesIO(EXECUTABLE), "a.pdf"))
    assert empty.status_code == 422 and field_error(empty.text, "message") == "Please write your message."
    assert field_error(empty.text, "attachment") == "Please attach a PDF, JPEG or PNG file."
    db.session.scalar(select(SupportRequest)).status = RequestStatus.CLOSED
    session.commit()
    closed = write_again(client, thread, fields)
    assert closed.status_code == 409 and "This conversation is closed." in closed.text
    assert 'name="message"' not in closed.text and count(SupportMessage) == 1


def test_an_agents_answer_shows_in_the_thread_and_on_the_bill(client, app, bill):
    _invoice, url = bill
    thread = send(client, url, form_fields(client, f"{url}/contact")).headers["Location"]
    with app.test_request_context():
        reply(db.session.scalar(select(SupportRequest)), "We checked: the meter was read.", agent_name="Ola",
              actor="agent:ola")
        db.session.commit()
    for page in (client.get(thread, headers=EN).text, client.get(url, headers=EN).text):
        assert "We checked: the meter was read." in page and '<li class="agent"' in page and "Answered" in page


# --- CSRF and rate limits -------------------------------------------------------------------------------


def test_without_a_csrf_token_or_submission_key_nothing_is_stored(client, bill):
    _invoice, url = bill
    fields = form_fields(client, f"{url}/contact")
    assert send(client, url, {"submission": fields["submission"]}).status_code == 400
    assert send(client, url, {"csrf_token": fields["csrf_token"]}).status_code == 400
    thread = send(client, url, fields).headers["Location"]
    assert write_again(client, thread, {"submission": "x"}).status_code == 400
    assert (count(SupportRequest), count(SupportMessage)) == (1, 1)


def test_posts_are_rate_limited(client, app, bill, monkeypatch):
    _invoice, url = bill
    monkeypatch.setitem(app.config, "SELF_SERVICE_RATE_LIMIT", "2 per minute")
    fields = form_fields(client, f"{url}/contact")
    assert [send(client, url, fields, message="").status_code for _ in range(3)] == [422, 422, 429]
    assert client.get(f"{url}/contact").status_code == 200  # reading the form is not counted


# --- flask support ------------------------------------------------------------------------------------


def run(app, *args):
    return app.test_cli_runner().invoke(args=["support", *args])


def test_the_cli_lists_requests_and_sends_an_agents_reply(client, app, bill):
    invoice, url = bill
    send(client, url, form_fields(client, f"{url}/contact"), message="Why\nso   high?")
    request = db.session.scalar(select(SupportRequest))
    listed = run(app, "list", "--creditor", invoice.creditor.slug)
    assert listed.exit_code == 0 and request.reference in listed.output and "customer: Why so high?" in listed.output
    answered = run(app, "reply", request.reference, "--message", "The meter was read.", "--agent", "Ola")
    assert answered.exit_code == 0, answered.output
    assert request.status == RequestStatus.ANSWERED and request.messages[-1].author_name == "Ola"
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "support.reply")) is not None
    assert request.reference not in run(app, "list").output
    assert request.reference in run(app, "list", "--status", "answered").output
    assert run(app, "reply", "S-NOTHERE", "--message", "Hi").exit_code == 1
    assert run(app, "reply", request.reference, "--message", " ").exit_code == 1
