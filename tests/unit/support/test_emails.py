"""The e-mails of contact requests: rendered at delivery in the recipient's language, the customer's
words quoted as plain text, a fresh bill link for the customer only, and delivered over real SMTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.outbox.base import DeliveryError
from app.outbox.dispatcher import run_once
from app.outbox.email import render
from app.outbox.models import OutboxStatus
from app.support import services
from app.support.attachments import Upload
from tests.factories import make_creditor, make_invoice
from tests.unit.support.conftest import PDF, TODAY, outbox

SCRIPT = '<script>alert("hi")</script>'


def plain(sent) -> str:
    return sent.get_body(("plain",)).get_content().replace("\r\n", "\n")


def rendered(kind: str):
    message = next(m for m in outbox() if m.kind == kind)
    return render(message)


def test_the_confirmation_in_norwegian(invoice, ask):
    request, _ = ask(invoice, message="Hvorfor er den så høy?\nMvh Kari")
    mail = rendered("support.received")
    assert mail.subject == f"Vi har mottatt meldingen din ({request.reference})"
    assert (mail.sender_name, mail.reply_to) == (invoice.creditor.name, "help@example.test")
    for part in (mail.text, mail.html):
        assert "Takk, vi har mottatt meldingen din" in part
        assert "Vi svarer deg på e-post, vanligvis innen to virkedager." in part
        assert f"Oppgi referansen {request.reference} hvis du kontakter oss igjen." in part
        assert "Et spørsmål om regningen" in part and "https://pay.example.test/l/" in part
    assert "Du skrev:\n> Hvorfor er den så høy?\n> Mvh Kari" in mail.text


def test_the_confirmation_of_a_call_back_in_german(ctx, ask):
    invoice = make_invoice(make_creditor("DE"))
    request, _ = ask(invoice, locale="de", contact_method="phone", contact_phone="+49 341 123456",
                     callback_date=TODAY + timedelta(days=2), callback_window="morning")
    mail = rendered("support.received")
    assert mail.subject == f"Wir haben Ihre Nachricht erhalten ({request.reference})"
    assert "Danke, wir haben Ihre Nachricht erhalten" in mail.text
    assert ("Wir rufen Sie am Mittwoch, 25. November 2026, zwischen 08:00 und 12:00 Uhr unter +49341123456 an."
            in mail.text)
    assert "Sie schrieben:" in mail.html and "Eine Frage zur Rechnung" in mail.html


@pytest.mark.parametrize(("kind", "locale", "words"), [
    ("NO", "nb", ("Vi har svart på meldingen din", "Ola skrev:", "> Måleren ble lest av 1.")),
    ("DE", "de", ("Wir haben Ihre Nachricht beantwortet", "Ola schrieb:", "> Måleren ble lest av 1.")),
])
def test_an_agents_reply_is_quoted_with_a_fresh_link_to_the_bill(ctx, ask, kind, locale, words):
    invoice = make_invoice(make_creditor(kind))
    request, _ = ask(invoice, locale=locale)
    services.reply(request, "Måleren ble lest av 1.\nHilsen Ola", agent_name="Ola", actor="agent:ola")
    mail = rendered("support.reply")
    assert request.reference in mail.subject and invoice.creditor.name in mail.subject
    assert all(word in mail.text for word in words) and "https://pay.example.test/l/" in mail.text
    assert mail.reply_to == "help@example.test"


def test_the_support_desk_gets_the_facts_and_the_customers_words_as_plain_text(invoice, ask):
    request, _ = ask(invoice, message=SCRIPT, upload=Upload("meter.pdf", "application/pdf", PDF))
    mail = rendered("support.notification")
    assert request.reference in mail.subject and invoice.number in mail.subject
    assert mail.reply_to == "kari@example.test"  # answering the notification writes to the customer
    assert mail.attachments == ()  # the file is named, never attached
    for part in (mail.text, mail.html):
        assert "En kunde har skrevet om en regning" in part and "Kari Nordmann" in part
        assert "Et spørsmål om regningen" in part and "E-post til kari@example.test" in part
        assert "Vedlegg" in part and "meter.pdf (application/pdf)" in part
        assert "/l/" not in part  # no customer's link in the desk's mailbox
    assert "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt;" in mail.html and "<script" not in mail.html
    assert f"> {SCRIPT}" in mail.text


def test_a_message_whose_request_is_gone_is_a_permanent_failure(invoice, ask):
    request, _ = ask(invoice)
    message = outbox()[0]
    db.session.delete(request)
    db.session.flush()
    with pytest.raises(DeliveryError) as error:
        render(message)
    assert error.value.permanent
    message.kind = "support.unknown"
    with pytest.raises(DeliveryError):
        render(message)


def test_the_dispatcher_delivers_every_support_e_mail_over_smtp(invoice, ask, smtp, tmp_path):
    request, _ = ask(invoice, message=SCRIPT)
    services.add_customer_message(request, "Any news?", None, "m1", str(tmp_path))
    services.reply(request, "Your meter was read on the 1st.\nKind regards", agent_name="Ola", actor="agent:ola")
    report = run_once()
    assert report.delivered == 4  # received, notification, notification of the second message, reply
    assert {m.status for m in outbox()} == {OutboxStatus.DELIVERED}
    sent = {(m["To"], m["Subject"]): m for m in smtp.messages}
    assert sorted(to for to, _subject in sent) == ["help@example.test", "help@example.test",
                                                  "kari@example.test", "kari@example.test"]
    reply = sent[("kari@example.test", f"Svar fra {invoice.creditor.name} ({request.reference})")]
    assert "> Your meter was read on the 1st.\n> Kind regards" in plain(reply)
    assert reply["Reply-To"] == "help@example.test"
    again = sent[("help@example.test", f"Kunden har skrevet igjen ({request.reference})")]
    assert "> Any news?" in plain(again)
    first = sent[("help@example.test", f"Ny melding {request.reference} om faktura {invoice.number}")]
    html = first.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script" not in html
    assert run_once().delivered == 0  # each once


def test_an_address_typed_into_the_form_gets_the_reference_but_no_link(invoice, ask):
    """Anyone holding the bill for a moment could type their own address: what goes there carries no
    link (it would outlive every revocation); the customer's address on file gets one."""
    from sqlalchemy import func, select

    from app.links.models import AccessLink

    links_before = db.session.scalar(select(func.count()).select_from(AccessLink))
    request, _ = ask(invoice, contact_email="someone.else@example.test")
    services.reply(request, "Sendt.", agent_name="Ola", actor="agent:ola")
    for kind in ("support.received", "support.reply"):
        message = next(m for m in outbox() if m.kind == kind)
        assert message.recipient == "someone.else@example.test"
        mail = render(message)
        for part in (mail.text, mail.html):
            assert "/l/" not in part and request.reference in part
            assert "ikke denne adressen registrert" in part  # why there is no link, in Norwegian
    assert db.session.scalar(select(func.count()).select_from(AccessLink)) == links_before

    on_file, _ = ask(invoice, contact_email=" Kari@Example.test ", submission_key="k2")
    assert "https://pay.example.test/l/" in rendered_for(on_file.reference, "support.received").text


def rendered_for(reference: str, kind: str):
    message = next(m for m in outbox() if m.kind == kind and m.idempotency_key.endswith(reference))
    return render(message)
