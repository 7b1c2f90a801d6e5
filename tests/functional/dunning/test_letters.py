"""Letters: the PDF a print-and-mail service posts, read back with pypdf (what it says and where, the
address inside the envelope's window) and its QR codes decoded (zxing-cpp); the print run's choices
(a bill settled since, deadlines counted from the letter's date, the link of an earlier print
revoked); short codes (Crockford base32, derived again, found after a key rotation)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pypdf
import pytest
from sqlalchemy import select

from app.billing.models import Customer
from app.billing.services import record_payment
from app.dunning import services
from app.dunning.letters import batch, document
from app.dunning.letters.document import DIN, NORDIC, LetterLink, render_letter
from app.dunning.models import Letter, LetterStatus, Message, MessageStatus, Notice, NoticeStatus
from app.extensions import db
from app.links import codes
from app.links.models import AccessLink
from tests.factories import make_creditor
from tests.functional.dunning.letters import BASE, find, letter_bills, plain, print_day, qr_codes, texts
from tests.unit.dunning.conftest import TODAY, creditor_with_plan, run

# --- short codes -----------------------------------------------------------------------------------------


def test_a_code_is_read_as_a_person_types_it():
    assert codes.normalise("7kq2m-9xdab") == "7KQ2M9XDAB"
    assert codes.normalise(" 7KQ2M 9XDAB ") == "7KQ2M9XDAB"
    assert codes.normalise("7KQ2M–9XDAB") == "7KQ2M9XDAB"  # a typographic dash, as a word processor makes it
    assert codes.normalise("OIL2M-9XDAB") == "0112M9XDAB"  # O is 0, I and L are 1
    for wrong in ("", "7KQ2M-9XDA", "7KQ2M-9XDABC", "7KQ2U-9XDAB", "7KQ2M/9XDAB", "x" * 100, None):
        assert codes.normalise(wrong) is None
    assert codes.display("7KQ2M9XDAB") == "7KQ2M-9XDAB"


def test_a_code_is_derived_from_its_link_under_each_key_and_hashed_under_a_key_too():
    new, old = codes.CodeKeys(["new-" + "n" * 40, "old-" + "o" * 40]), codes.CodeKeys(["old-" + "o" * 40])
    code = old.code(41)
    assert len(code) == 10 and set(code) <= set(codes.ALPHABET)
    assert old.code(41) == code and old.code(42) != code and old.code(41, attempt=1) != code
    assert new.code(41, key=1) == code  # the old key, listed second after a rotation, gives the same code
    assert old.hash(code) in new.hashes(code) and old.hash(code) != new.hash(code)
    assert code not in old.hash(code)


def test_an_issued_code_opens_nothing_but_is_found_again(norway):
    creditor, plan = norway
    invoice = letter_bills(creditor, plan)[0]
    issued = codes.issue_code_link(invoice, ttl_days=30, actor="test", base_url=BASE)
    assert issued.url == f"{BASE}/k/{codes.display(issued.code)}" and issued.typed == issued.url.removeprefix("https://")
    link = issued.link
    assert (link.channel, link.purpose, link.invoice_id) == ("letter", "bill", invoice.id)
    assert link.code_hash and issued.code not in link.code_hash and link.key_hash
    assert codes.code_of(link) == issued.code
    found = codes.resolve_code(codes.display(issued.code).lower())
    assert found.ok and found.link_id == link.id and found.public_id == invoice.public_id
    assert not codes.resolve_code("ZZZZZ-ZZZZZ").ok and not codes.resolve_code("nonsense").ok
    codes.revoke_link(link, actor="test", reason="test")
    gone = codes.resolve_code(issued.code)
    assert not gone.ok and gone.creditor.id == creditor.id  # genuine: the neutral page names the creditor


# --- the PDF ------------------------------------------------------------------------------------------------


def inside(found, window, *, left: float, top: float, width: float, height: float) -> None:
    """Every piece of text is inside the rectangle (mm from the sheet's top left corner): its baseline
    and, above it, its letters' height."""
    for text in found:
        assert left - 0.01 <= text.x <= left + width - 5, (text, window)
        assert top <= text.y - 0.75 * text.size and text.y <= top + height, (text, window)


def test_a_norwegian_letter_says_what_is_owed_and_how_to_pay_it_without_a_smartphone(norway):
    creditor, plan = norway
    invoice = letter_bills(creditor, plan)[0]
    (printed,) = print_day()
    pdf, facts = printed.pdf, printed.print.facts
    text = plain(pdf)
    link = db.session.get(AccessLink, printed.print.link_id)
    code = codes.display(codes.code_of(link))
    typed = f"pay.example.test/k/{code}"
    assert facts["locale"] == "nb" and printed.print.pages == 1
    assert "Purring: faktura " + invoice.number in text  # the step's subject, in Norwegian
    assert "Purregebyr" in text and "35,00 kr" in text  # the step's fee as a line of its own
    assert "160,01 kr" in text  # what is left to pay: the bill and the fee
    assert "Betal innen 22. desember 2026" in text  # the deadline: 14 days from the letter's date
    assert "Dette skylder du" in text and "Slik betaler du" in text and "På nett" in text  # the letter's words in nb
    assert "1503.20.80119" in text and invoice.payment_reference in text  # the account number and the KID
    assert "Kontonummer" in text and "KID" in text
    assert typed in text  # the short address, typed
    assert "Side" not in text  # one page: no page numbers
    assert qr_codes(pdf) == [f"{BASE}/k/{code}"]  # no EPC code for NOK; the QR code opens the bill
    # The address lies in the Nordic window (E65: 15 mm from the left, 40–70 mm from the top, 95 mm wide;
    # C5: 44–79 mm, 105 mm wide): both show it.
    found = texts(pdf)
    lines = [find(found, "Kari C-1"), find(found, "Storgata 1"), find(found, "0150 Oslo")]
    assert document.window_for("NO") is NORDIC
    inside(lines, "field", left=NORDIC.left, top=NORDIC.top, width=NORDIC.width, height=NORDIC.height)
    inside(lines, "E65 and C5", left=15, top=44, width=95, height=26)
    assert not [t for t in found if t.text.startswith("Fjordkraft Test AS · Street")]  # no return line in its window
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    fonts = [font.get_object() for font in reader.pages[0]["/Resources"]["/Font"].values()]
    assert fonts and all("/FontFile2" in f["/DescendantFonts"][0].get_object()["/FontDescriptor"] for f in fonts)
    assert reader.metadata["/CreationDate"].startswith("D:20261208")  # the letter's date, not the clock's


def test_a_norwegian_collection_warning_names_the_consequences(norway):
    creditor, plan = norway
    invoice = letter_bills(creditor, plan, due=TODAY - timedelta(days=40), on=TODAY)[0]
    run(creditor, TODAY + timedelta(days=15))  # the inkassovarsel: by letter (no consent to electronic notices)
    printed = print_day(TODAY + timedelta(days=15))
    warning = next(p for p in printed if p.print.facts["kind"] == "collection_warning")
    text = plain(warning.pdf)
    assert "Inkassovarsel" in text and "inkassoloven § 9" in text
    assert "inkassosalær" in text  # the consequences, in the customer's language (templates.consequences)
    assert invoice.number in text


def test_a_german_letter_has_the_din_window_the_iban_and_an_epc_code(germany):
    creditor, plan = germany
    address = {"line1": "Hauptstraße 5", "postcode": "10115", "city": "Berlin", "country": "DE"}
    invoice = letter_bills(creditor, plan, due=TODAY - timedelta(days=30), address=address, preferred_locale="de")[0]
    run(creditor, TODAY + timedelta(days=16))  # the final reminder: a fee and default interest
    printed = print_day(TODAY + timedelta(days=16))
    final = next(p for p in printed if p.print.facts["kind"] == "final_reminder")
    pdf, text = final.pdf, plain(final.pdf)
    assert final.print.facts["locale"] == "de"
    assert "Ihr offener Betrag" in text and "Bei Ihrer Bank oder per Überweisung" in text
    assert "Mahngebühr" in text and "2,50 €" in text and "Verzugszinsen" in text  # the fee and the interest as lines
    assert "DE89 3704 0044 0532 0130 00" in text and "COBADEFFXXX" in text and "IBAN" in text
    assert invoice.payment_reference[:4] in text.replace(" ", "")
    link = db.session.get(AccessLink, final.print.link_id)
    url = f"{BASE}/k/{codes.display(codes.code_of(link))}"
    found_codes = qr_codes(pdf)
    assert url in found_codes
    (epc,) = [payload for payload in found_codes if payload.startswith("BCD")]
    assert epc.split("\n")[6:10] == ["DE89370400440532013000", f"EUR{invoice.balance / 100:.2f}", "",
                                     invoice.payment_reference]
    # DIN 5008 form B: the field 45 mm from the top and 20 mm from the left, 85 × 45 mm; the return line in
    # its upper zone, the address below it; the window of a DIN C5/6 envelope shows both.
    found = texts(pdf)
    return_line = find(found, "Stadtwerke Test GmbH ·")
    lines = [find(found, "Kari C-1"), find(found, "Hauptstraße 5"), find(found, "10115 Berlin")]
    assert document.window_for("DE") is DIN
    inside([return_line, *lines], "field", left=DIN.left, top=DIN.top, width=DIN.width, height=DIN.height)
    assert return_line.y < DIN.top + 17.7 < min(line.y for line in lines)
    assert all(line.x >= DIN.left + DIN.inset - 0.01 for line in lines)


def test_an_english_letter_for_a_creditor_without_rules(app, ctx):
    creditor, plan = creditor_with_plan("IE", "none")
    address = {"line1": "1 Main Street", "postcode": "D02 X285", "city": "Dublin", "country": "IE"}
    invoice = letter_bills(creditor, plan, due=TODAY - timedelta(days=30), address=address, preferred_locale="en",
                           phone=None, email=None)[0]
    printed = print_day()
    assert printed, "no letter"
    text = plain(printed[0].pdf)
    assert printed[0].print.facts["locale"] == "en"
    assert "How to pay" in text and "Online" in text and invoice.number in text
    assert "IE29 AIBK 9311 5212 3456 78" in text and "Reference" in text


def test_a_letter_abroad_names_the_country_in_capitals(norway):
    creditor, plan = norway
    address = {"line1": "Hauptstraße 5", "postcode": "10115", "city": "Berlin", "country": "DE"}
    letter_bills(creditor, plan, address=address)
    (printed,) = print_day()
    assert "TYSKLAND" in plain(printed.pdf)  # in the sender's language, on a line of its own


def test_one_letter_for_several_bills_lists_each_with_its_reference(norway):
    creditor, plan = norway
    invoices = letter_bills(creditor, plan, count=3)
    (printed,) = print_day()
    text = plain(printed.pdf)
    assert [bill["number"] for bill in printed.print.facts["bills"]] == [i.number for i in reversed(invoices)]
    for invoice in invoices:
        assert invoice.number in text and invoice.payment_reference in text
    assert "Totalt å betale" in text and "Betal hver regning med sin egen referanse" in text
    total = sum(i.balance for i in invoices)
    assert printed.print.facts["total"] == total
    link = db.session.get(AccessLink, printed.print.link_id)
    assert link.invoice_id == invoices[-1].id  # the oldest bill's page (as the e-mails link)


def test_a_long_letter_has_page_numbers_and_a_short_one_none(norway):
    creditor, plan = norway
    letter_bills(creditor, plan, count=12)
    (printed,) = print_day()
    assert printed.print.pages > 1
    reader = pypdf.PdfReader(io.BytesIO(printed.pdf))
    assert len(reader.pages) == printed.print.pages
    assert "Side 1 av" in reader.pages[0].extract_text() and f"Side 2 av {printed.print.pages}" in \
        reader.pages[1].extract_text()


def test_the_same_facts_and_link_print_the_same_bytes(norway):
    creditor, plan = norway
    letter_bills(creditor, plan)
    (printed,) = print_day()
    link = db.session.get(AccessLink, printed.print.link_id)
    issued = codes.code_link(link, BASE)
    again = render_letter(printed.print.facts, LetterLink(issued.url, issued.typed), logo_src=None)
    assert again.pdf == printed.pdf and batch.checksum(again.pdf) == printed.print.sha256


# --- the print run's choices ---------------------------------------------------------------------------------


def test_printing_marks_the_letter_and_keeps_the_text_without_the_code(norway):
    creditor, plan = norway
    invoice = letter_bills(creditor, plan)[0]
    letter = db.session.scalars(select(Letter)).one()
    (printed,) = print_day()
    assert (letter.status, letter.batch, letter.pages, letter.sha256) == (
        LetterStatus.PRINTED, TODAY, 1, printed.print.sha256)
    assert letter.printed_at is not None and printed.print.file_name.endswith(f"letter-{letter.id}-1.pdf")
    message = db.session.get(Message, letter.message_id)
    code = codes.code_of(db.session.get(AccessLink, printed.print.link_id))
    assert message.status == MessageStatus.SENT and "[link]" in message.body
    assert code not in message.body and codes.display(code) not in message.body
    assert invoice.number in message.subject
    assert print_day() == []  # nothing due any more


def test_a_bill_settled_before_the_batch_is_left_out_and_a_letter_with_none_left_is_withdrawn(norway):
    creditor, plan = norway
    paid, still = letter_bills(creditor, plan, count=2)
    record_payment(paid, paid.balance, actor="test", paid_on=TODAY, method="test")
    (printed,) = print_day()
    assert [b["number"] for b in printed.print.facts["bills"]] == [still.number]
    notice = db.session.scalars(select(Notice).where(Notice.invoice_id == paid.id)).one()
    assert notice.status == NoticeStatus.PAID_BEFORE

    other = letter_bills(creditor, plan, ref="C-2")[0]
    record_payment(other, other.balance, actor="test", paid_on=TODAY, method="test")
    (withdrawn,) = print_day()
    assert isinstance(withdrawn, batch.Withdrawn) and withdrawn.letter.status == LetterStatus.WITHDRAWN
    message = db.session.get(Message, withdrawn.letter.message_id)
    assert message.status == MessageStatus.FAILED and message.failure == "settled before it went out"


def test_deadlines_count_from_the_letters_date_and_the_next_step_waits(norway):
    creditor, plan = norway
    invoice = letter_bills(creditor, plan)[0]
    notice = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id)).one()
    assert notice.deadline == TODAY + timedelta(days=14)
    later = TODAY + timedelta(days=3)  # printed three days after the run decided it
    (printed,) = print_day(later)
    assert notice.deadline == later + timedelta(days=14)
    assert printed.print.facts["deadline"] == notice.deadline.isoformat()
    assert invoice.dunning_next_on > notice.deadline


def test_a_letter_printed_again_gets_a_new_link_and_the_old_one_stops_working(norway):
    creditor, plan = norway
    letter_bills(creditor, plan)
    letter = db.session.scalars(select(Letter)).one()
    (first,) = print_day()
    batch.request_reprint(letter, actor="agent:1")
    assert letter.status == LetterStatus.PENDING and letter.reprint_requested_by == "agent:1"
    with pytest.raises(Exception, match="pending"):
        batch.request_reprint(letter, actor="agent:1")
    customer = db.session.get(Customer, letter.customer_id)  # the first did not arrive: the address was wrong
    services.update_contact_points(customer, {"address": {"line1": "Kirkegata 2", "postcode": "0153", "city": "Oslo",
                                                          "country": "NO"}})
    (second,) = print_day(TODAY + timedelta(days=1))
    assert second.print.facts["address"]["line1"] == "Kirkegata 2" and "Kirkegata 2" in plain(second.pdf)
    assert first.print.facts["address"]["line1"] == "Storgata 1"  # what the first said stays with it
    old, new = db.session.get(AccessLink, first.print.link_id), db.session.get(AccessLink, second.print.link_id)
    assert old.revoked_at is not None and new.revoked_at is None and old.id != new.id
    assert not codes.resolve_code(codes.code_of(old)).ok and codes.resolve_code(codes.code_of(new)).ok
    assert second.print.file_name.endswith(f"letter-{letter.id}-2.pdf") and letter.batch == TODAY + timedelta(days=1)
    assert batch.copy_of(first.print, BASE).same  # the first print can still be made again exactly


def test_letters_due_are_those_decided_by_the_end_of_the_day_where_the_creditor_is(norway):
    creditor, plan = norway
    letter_bills(creditor, plan)
    message = db.session.scalars(select(Message)).one()
    message.created_at = datetime(2026, 12, 8, 22, 30, tzinfo=UTC)  # 23:30 in Oslo: still the 8th
    assert len(batch.due(TODAY)) == 1
    message.created_at = datetime(2026, 12, 8, 23, 30, tzinfo=UTC)  # 00:30 on the 9th in Oslo
    assert batch.due(TODAY) == [] and len(batch.due(TODAY + timedelta(days=1))) == 1
    assert batch.due(TODAY + timedelta(days=1), creditor_id=make_creditor("NO").id) == []


def test_a_letter_never_printed_cannot_be_asked_to_be_printed_again(norway):
    creditor, plan = norway
    letter_bills(creditor, plan)
    letter = db.session.scalars(select(Letter)).one()
    with pytest.raises(Exception, match="pending"):
        batch.request_reprint(letter, actor="agent:1")
