"""The customer's contact details on the bill: shown masked; a new e-mail address or mobile number used only
after the 6-digit code sent to it is typed back (expiry, attempts, rate limits, another customer's or
creditor's change never confirmed); the preferred channel and the consents; every problem a translated
error with nothing changed."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.backoffice.case import describe
from app.billing.models import InvoiceEvent
from app.dunning import contact
from app.dunning.models import ContactChange
from app.extensions import db
from app.models import utcnow
from app.outbox.base import render
from app.outbox.models import OutboxMessage
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill

EN = {"Accept-Language": "en"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def words(html: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", re.sub(r"<[^>]+>", " ", html))


def details_url(bill_url: str) -> str:
    return f"{bill_url}/contact-details"


def csrf(client, url: str) -> str:
    return TOKEN.search(client.get(url, headers=EN).text).group(1)


def ask_code(client, bill_url: str, kind: str, value: str, **headers):
    page = details_url(bill_url)
    field = "email" if kind == "email" else "phone"
    return client.post(f"{page}/{kind}", data={"csrf_token": csrf(client, page), field: value},
                       headers={**EN, **headers})


def code_messages(customer_id: int, kind: str | None = None) -> list[OutboxMessage]:
    changes = {c.id for c in db.session.scalars(select(ContactChange).where(ContactChange.customer_id == customer_id))}
    found = [m for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == contact.KIND)
                                           .order_by(OutboxMessage.id))
             if m.payload.get("change_id") in changes]
    return [m for m in found if kind is None or m.channel == kind]


def code_of(app, message: OutboxMessage) -> tuple[str, str]:
    """The message as delivered (rendered, as the dispatcher does) and the code in it."""
    with app.test_request_context():
        rendered = render(message)
    text = rendered if isinstance(rendered, str) else f"{rendered.subject}\n{rendered.text}"
    return text, re.search(r"\b(\d{6})\b", text).group(1)


def confirm(client, bill_url: str, kind: str, change_id, code: str):
    page = details_url(bill_url)
    return client.post(f"{page}/{kind}/confirm", data={"csrf_token": csrf(client, page), "change": str(change_id),
                                                       "code": code}, headers=EN)


def latest_change(customer_id: int) -> ContactChange:
    return db.session.scalars(select(ContactChange).where(ContactChange.customer_id == customer_id)
                              .order_by(ContactChange.id.desc())).first()


def events(invoice, kind: str) -> list[InvoiceEvent]:
    return list(db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id,
                                                              InvoiceEvent.kind == kind)))


def test_the_page_shows_the_details_masked_and_the_bill_links_to_it(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    bill = client.get(url, headers=EN).text
    assert f'href="{details_url(url)}"' in bill
    page = client.get(details_url(url), headers=EN)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = words(page.text)
    assert "ka***@example.test" in text and "+47 *** ** 567" in text
    assert "kari@example.test" not in page.text and "91234567" not in page.text
    assert "Letters are always allowed" in text
    assert "Din kontaktinformasjon" in words(client.get(details_url(url) + "?lang=nb").text)
    assert "Ihre Kontaktdaten" in words(client.get(details_url(url) + "?lang=de").text)


def test_a_new_email_is_used_only_after_its_code_is_confirmed(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    customer = invoice.customer
    url = open_bill(client, app, invoice)
    answer = ask_code(client, url, "email", "  ny.adresse@example.no ")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("#confirm-email")
    db.session.expire_all()
    assert customer.email == "kari@example.test"  # nothing changes before the code
    (message,) = code_messages(customer.id)
    assert (message.channel, message.recipient) == ("email", "ny.adresse@example.no")
    change = latest_change(customer.id)
    assert change.code_hash and len(change.code_hash) == 64 and change.attempts == 0
    assert timedelta(minutes=14) < change.expires_at - utcnow() <= timedelta(minutes=15)
    page = words(client.get(details_url(url), headers=EN).text)
    assert "We sent a 6-digit code to ny***@example.no" in page

    text, code = code_of(app, message)
    assert creditor.name in text and "http" not in text and "/l/" not in text  # the code and the name, no link
    assert code not in change.code_hash and code not in str(message.payload)  # hashed; out of the outbox once sent
    done = confirm(client, url, "email", change.id, code)
    assert done.status_code == 303 and "saved=email" in done.headers["Location"]
    db.session.expire_all()
    assert customer.email == "ny.adresse@example.no" and customer.email_allowed
    assert latest_change(customer.id).confirmed_at is not None
    page = client.get(done.headers["Location"], headers=EN).text
    assert "ny***@example.no" in page and "ny.adresse@example.no" not in page
    assert "Your new e-mail address is confirmed" in words(page)
    (event,) = events(invoice, "contact_changed")
    assert event.data == {"channel": "email", "to": "ny***@example.no", "was": "ka***@example.test"}
    assert events(invoice, "contact_change_requested")
    with app.test_request_context():  # the agents' timeline of the bill says so, masked
        assert describe(event, invoice) == ("The customer confirmed a new e-mail contact",
                                            "ka***@example.test → ny***@example.no")
    # The same code again: the change is done; nothing more happens.
    again = confirm(client, url, "email", change.id, code)
    assert again.status_code == 422 and "no longer waiting" in words(again.text)


def test_a_wrong_code_counts_and_changes_nothing_and_five_end_the_change(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    ask_code(client, url, "email", "new@example.no")
    (message,) = code_messages(invoice.customer_id)
    _text, code = code_of(app, message)
    change = latest_change(invoice.customer_id)
    wrong = "000000" if code != "000000" else "111111"
    answer = confirm(client, url, "email", change.id, wrong)
    assert answer.status_code == 422 and "That code is not right" in words(answer.text)
    db.session.expire_all()
    assert invoice.customer.email == "kari@example.test" and latest_change(invoice.customer_id).attempts == 1
    norsk = client.post(f"{details_url(url)}/email/confirm?lang=nb",
                        data={"csrf_token": csrf(client, details_url(url)), "change": change.id, "code": "12"})
    assert norsk.status_code == 422 and "Koden er ikke riktig" in words(norsk.text)
    client.get(f"{details_url(url)}?lang=en")  # back to English (the switch is kept for the browser)
    for _n in range(3):
        confirm(client, url, "email", change.id, wrong)
    db.session.expire_all()
    assert latest_change(invoice.customer_id).attempts == 5
    late = confirm(client, url, "email", change.id, code)  # the right code, after five wrong ones
    assert late.status_code == 422 and "Too many wrong codes" in words(late.text)
    db.session.expire_all()
    assert invoice.customer.email == "kari@example.test"


def test_an_expired_code_and_a_replaced_one_confirm_nothing(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    ask_code(client, url, "email", "new@example.no")
    (message,) = code_messages(invoice.customer_id)
    _text, code = code_of(app, message)
    change = latest_change(invoice.customer_id)
    change.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    answer = confirm(client, url, "email", change.id, code)
    assert answer.status_code == 422 and "This code has expired" in words(answer.text)
    db.session.expire_all()
    assert invoice.customer.email == "kari@example.test"
    with app.test_request_context():  # an expired code is not sent late either
        from app.outbox.base import DeliveryError
        try:
            render(db.session.get(OutboxMessage, message.id))
            raise AssertionError("rendered")
        except DeliveryError as exc:
            assert exc.permanent


def test_codes_are_rate_limited_per_customer_and_per_address(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    assert ask_code(client, url, "email", "a@example.no").status_code == 303
    again = ask_code(client, url, "email", "b@example.no")
    assert again.status_code == 429 and "Please wait a minute" in words(again.text)
    assert len(code_messages(invoice.customer_id)) == 1
    for n in range(4):  # an hour's allowance: five codes, a minute apart
        for change in db.session.scalars(select(ContactChange).where(ContactChange.customer_id == invoice.customer_id)):
            change.created_at -= timedelta(minutes=2)
        db.session.commit()
        assert ask_code(client, url, "email", f"c{n}@example.no").status_code == 303
    for change in db.session.scalars(select(ContactChange).where(ContactChange.customer_id == invoice.customer_id)):
        change.created_at -= timedelta(minutes=2)
    db.session.commit()
    over = ask_code(client, url, "email", "d@example.no")
    assert over.status_code == 429 and "Too many codes" in words(over.text)
    assert len(code_messages(invoice.customer_id)) == 5
    # Only the latest code of a kind works: the earlier ones were replaced.
    changes = list(db.session.scalars(select(ContactChange).where(ContactChange.customer_id == invoice.customer_id)
                                      .order_by(ContactChange.id)))
    assert all(c.expires_at <= utcnow() for c in changes[:-1]) and changes[-1].expires_at > utcnow()


def test_bad_input_is_a_translated_error_and_nothing_is_sent(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    for kind, value, error in (("email", "not-an-address", "Please type an e-mail address"),
                               ("email", "kari@example.test", "This is the e-mail address we have already"),
                               ("email", "x" * 300 + "@example.no", "Please type an e-mail address"),
                               ("sms", "12345", "Please type a mobile number with its country code"),
                               ("sms", "+4791234567", "This is the mobile number we have already")):
        answer = ask_code(client, url, kind, value)
        assert answer.status_code == 422, (kind, value)
        assert error in words(answer.text), (kind, value)
    tysk = client.post(f"{details_url(url)}/sms?lang=de", data={"csrf_token": csrf(client, details_url(url)),
                                                                "phone": "abc"})
    assert tysk.status_code == 422 and "Ländervorwahl" in words(tysk.text)
    client.get(f"{details_url(url)}?lang=en")
    no_csrf = client.post(f"{details_url(url)}/email", data={"email": "a@example.no"})
    assert no_csrf.status_code == 400
    assert code_messages(invoice.customer_id) == []


def test_a_new_mobile_number_gets_its_code_by_sms(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    assert ask_code(client, url, "sms", "+47 987 65 432").status_code == 303
    (message,) = code_messages(invoice.customer_id, "sms")
    assert message.recipient == "+4798765432"
    text, code = code_of(app, message)
    assert creditor.name in text and "http" not in text
    customer = invoice.customer
    customer.sms_stopped_at = utcnow()  # the old number had replied STOP: the new one is confirmed anew
    db.session.commit()
    assert confirm(client, url, "sms", latest_change(customer.id).id, code).status_code == 303
    db.session.expire_all()
    assert customer.phone == "+4798765432" and customer.sms_allowed and customer.sms_stopped_at is None
    assert "+47 *** ** 432" in words(client.get(details_url(url), headers=EN).text)


def test_another_customers_or_creditors_change_is_never_confirmed(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    first = make_invoice(creditor)
    second = make_invoice(creditor, customer={"external_ref": "C-2", "name": "Ola Nordmann",
                                              "email": "ola@example.test", "phone": "+4790000002"})
    other_creditor = make_creditor("NO", default_locale="en")
    third = make_invoice(other_creditor)  # the same external_ref at another creditor: another customer
    first_url = open_bill(client, app, first)
    ask_code(client, first_url, "email", "taken@example.no")
    (message,) = code_messages(first.customer_id)
    _text, code = code_of(app, message)
    change = latest_change(first.customer_id)
    for invoice in (second, third):
        browser = app.test_client()
        url = open_bill(browser, app, invoice)
        answer = confirm(browser, url, "email", change.id, code)
        assert answer.status_code == 422 and "no longer waiting" in words(answer.text)
        # Nor can it post to the first bill's page without the first bill's grant.
        stranger = browser.post(f"{details_url(first_url)}/email/confirm",
                                data={"csrf_token": csrf(browser, details_url(url)), "change": change.id, "code": code})
        assert stranger.status_code == 404
    db.session.expire_all()
    assert first.customer.email == "kari@example.test"
    assert second.customer.email == "ola@example.test" and third.customer.email == "kari@example.test"
    assert latest_change(first.customer_id).attempts == 0 and latest_change(first.customer_id).confirmed_at is None
    # The page of another bill shows only its own customer's details.
    assert "ol***@example.test" in client.get(details_url(open_bill(client, app, second)), headers=EN).text


def test_preferences_are_saved_at_once_and_turning_email_on_ends_an_unsubscribe(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    customer = invoice.customer
    url = open_bill(client, app, invoice)
    page = details_url(url)
    saved = client.post(f"{page}/preferences", data={"csrf_token": csrf(client, page), "preferred_channel": "email",
                                                     "email_allowed": "y", "electronic_notices_allowed": "y"},
                        headers=EN)
    assert saved.status_code == 303
    db.session.expire_all()
    assert (customer.preferred_channel, customer.email_allowed, customer.sms_allowed,
            customer.electronic_notices_allowed) == ("email", True, False, True)
    (event,) = events(invoice, "contact_preferences_changed")
    assert event.data == {"preferred_channel": "email", "sms_allowed": False, "electronic_notices_allowed": True}
    assert "Your choices are saved" in words(client.get(saved.headers["Location"], headers=EN).text)

    refused = client.post(f"{page}/preferences", data={"csrf_token": csrf(client, page), "preferred_channel": "sms",
                                                       "email_allowed": "y"}, headers=EN)
    assert refused.status_code == 422 and "Please allow reminders by this channel" in words(refused.text)
    customer.email_allowed, customer.email_unsubscribed_at = False, utcnow()
    customer.email = None
    db.session.commit()
    refused = client.post(f"{page}/preferences", data={"csrf_token": csrf(client, page), "preferred_channel": "email",
                                                       "email_allowed": "y"}, headers=EN)
    assert refused.status_code == 422 and "Please add an e-mail address first" in words(refused.text)
    db.session.expire_all()
    assert customer.email_unsubscribed_at is not None and customer.preferred_channel == "email"  # unchanged
    customer.email = "kari@example.test"
    db.session.commit()
    client.post(f"{page}/preferences", data={"csrf_token": csrf(client, page), "email_allowed": "y"}, headers=EN)
    db.session.expire_all()
    assert customer.email_allowed and customer.email_unsubscribed_at is None and customer.preferred_channel is None
