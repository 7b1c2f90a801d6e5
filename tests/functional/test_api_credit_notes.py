"""Credit notes through the creditor API: issued on an invoice that never changes, numbered in the
creditor's own series, made once per id, refused (nothing changed) when wrong, and only on the
caller's own invoices; what was paid beyond the new total is owed back."""

from __future__ import annotations

from sqlalchemy import func, select

from app.billing.models import CreditNote, CreditNoteLine, InvoiceEvent, InvoiceLine
from app.extensions import db
from app.models import utcnow
from app.payments.models import Payment
from app.payments.services import settle
from tests.factories import invoice_payload
from tests.functional.test_api import API, api_creditor, assert_json_error, create, stored


def issue(client, headers, number, body):
    return client.post(f"{API}/invoices/{number}/credit-notes", json=body, headers=headers)


def lines_as_issued(creditor, number):
    invoice = stored(creditor, number)
    return [(line.quantity, line.unit_price, line.net, line.vat, line.gross) for line in invoice.lines]


def test_a_credit_note_of_one_line_leaves_the_invoice_as_issued(client, session):
    creditor, headers = api_creditor("NO")
    payload = invoice_payload("NOK", lines=2, number="2026-7")
    assert create(client, headers, payload).status_code == 201
    issued = lines_as_issued(creditor, "2026-7")
    answer = issue(client, headers, "2026-7", {"reason": "Meter read wrongly", "id": "cn-1",
                                               "lines": [{"position": 2, "amount": 5000}]})
    assert answer.status_code == 201, answer.text
    body = answer.json
    assert body["number"] == "CN-000001" and body["invoice_number"] == "2026-7" and body["id"] == "cn-1"
    assert (body["total"], body["subtotal"], body["vat_total"]) == (5000, 4000, 1000)  # 25 %
    assert body["lines"] == [{"position": 2, "description": "Service 2", "vat_rate": 2500, "net": 4000, "vat": 1000,
                              "gross": 5000}]
    assert body["invoice"] == {"status": "open", "total": payload["total"] - 5000, "credited": 5000,
                               "amount_paid": 0, "balance": payload["total"] - 5000}
    assert lines_as_issued(creditor, "2026-7") == issued
    again = issue(client, headers, "2026-7", {"reason": "Meter read wrongly", "id": "cn-1",
                                              "lines": [{"position": 2, "amount": 5000}]})
    assert again.status_code == 200 and again.json["number"] == "CN-000001"
    listed = client.get(f"{API}/invoices/2026-7/credit-notes", headers=headers)
    assert listed.status_code == 200 and [n["number"] for n in listed.json["credit_notes"]] == ["CN-000001"]
    invoice = client.get(f"{API}/invoices/2026-7", headers=headers).json
    assert invoice["credited"] == 5000 and invoice["events"][-1]["kind"] == "credit_note_issued"


def test_everything_left_is_credited_when_no_lines_are_given_and_a_paid_bill_owes_it_back(client, session):
    creditor, headers = api_creditor("NO")
    payload = invoice_payload("NOK", lines=2, number="2026-8")
    create(client, headers, payload)
    invoice = stored(creditor, "2026-8")
    settle(invoice.id, provider="manual", payment_id="m-1", amount=invoice.total, currency="NOK", method="card",
           received_at=utcnow(), actor="test")
    db.session.commit()
    answer = issue(client, headers, "2026-8", {"reason": "Contract cancelled"})
    assert answer.status_code == 201, answer.text
    assert answer.json["total"] == payload["total"]
    assert answer.json["invoice"] == {"status": "paid", "total": 0, "credited": payload["total"],
                                      "amount_paid": payload["total"], "balance": -payload["total"]}
    owed = db.session.scalar(select(func.sum(Payment.refund_due)).where(Payment.invoice_id == invoice.id))
    assert owed == payload["total"]
    nothing = issue(client, headers, "2026-8", {"reason": "Again"})
    assert_json_error(nothing, 422, "validation_failed")
    assert nothing.json["errors"] == {"lines": "nothing_left_to_credit"}


def test_numbers_run_per_creditor(client, session):
    _first, first_headers = api_creditor("NO")
    _second, second_headers = api_creditor("DE")
    create(client, first_headers, invoice_payload("NOK", lines=1, number="A-1"))
    create(client, second_headers, invoice_payload("EUR", lines=1, number="A-1"))
    numbers = [issue(client, first_headers, "A-1", {"reason": "x", "lines": [{"position": 1, "amount": 100}]}),
               issue(client, second_headers, "A-1", {"reason": "x", "lines": [{"position": 1, "amount": 100}]}),
               issue(client, first_headers, "A-1", {"reason": "y", "lines": [{"position": 1, "amount": 100}]})]
    assert [answer.json["number"] for answer in numbers] == ["CN-000001", "CN-000001", "CN-000002"]


def test_bad_credit_notes_change_nothing_and_name_the_field(client, session):
    _creditor, headers = api_creditor("NO")
    payload = invoice_payload("NOK", lines=2, number="2026-9")
    create(client, headers, payload)

    def tables():
        return [db.session.scalar(select(func.count()).select_from(m))
                for m in (CreditNote, CreditNoteLine, InvoiceEvent, InvoiceLine)]

    before = tables()
    cases = [
        ({"reason": "x", "lines": [{"position": 3, "amount": 100}]}, {"lines.0.position": "unknown_line"}),
        ({"reason": "x", "lines": [{"position": 1, "amount": 100}, {"position": 1, "amount": 100}]},
         {"lines.1.position": "twice"}),
        ({"reason": "x", "lines": [{"position": 1, "amount": 100}, {"position": 2, "amount": 999999}]},
         {"lines.1.amount": "more_than_line"}),
    ]
    for body, errors in cases:
        answer = issue(client, headers, "2026-9", body)
        assert_json_error(answer, 422, "validation_failed")
        assert answer.json["errors"] == errors, body
    for body in ({"lines": [{"position": 1, "amount": 100}]}, {"reason": "", "lines": None},
                 {"reason": "x", "lines": [{"position": 1, "amount": 0}]}, {"reason": "x", "lines": []},
                 {"reason": "x", "extra": 1}):
        answer = issue(client, headers, "2026-9", body)
        assert_json_error(answer, 422, "validation_failed")
    assert tables() == before
    assert_json_error(issue(client, headers, "NOPE", {"reason": "x"}), 404, "not_found")


def test_another_creditors_invoice_and_id_are_not_reachable(client, session):
    _mine, headers = api_creditor("NO")
    _theirs, their_headers = api_creditor("NO")
    create(client, their_headers, invoice_payload("NOK", lines=1, number="T-1"))
    create(client, headers, invoice_payload("NOK", lines=1, number="M-1"))
    create(client, headers, invoice_payload("NOK", lines=1, number="M-2"))
    assert_json_error(issue(client, headers, "T-1", {"reason": "x"}), 404, "not_found")
    assert_json_error(client.get(f"{API}/invoices/T-1/credit-notes", headers=headers), 404, "not_found")
    # their id does not collide with mine; my id on another of my invoices is refused
    theirs_issued = issue(client, their_headers, "T-1", {"reason": "x", "id": "same"})
    assert theirs_issued.status_code == 201
    assert issue(client, headers, "M-1", {"reason": "x", "id": "same"}).status_code == 201
    reused = issue(client, headers, "M-2", {"reason": "x", "id": "same"})
    assert_json_error(reused, 422, "validation_failed")
    assert reused.json["errors"] == {"id": "used_for_another_invoice"}
    their_notes = client.get(f"{API}/invoices/T-1/credit-notes", headers=their_headers).json["credit_notes"]
    assert [n["total"] for n in their_notes] == [theirs_issued.json["total"]]  # my calls added none of theirs


def test_the_credit_note_pdf_names_the_invoice_its_lines_vat_and_the_new_balance(app, client, session):
    import io

    from flask_babel import force_locale
    from pypdf import PdfReader

    from app.billing.corrections import credit_notes
    from app.billing.credit_note_pdf import credit_note_pdf_response

    creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", lines=2, number="2026-11"))
    issue(client, headers, "2026-11", {"reason": "Feil måleravlesning", "lines": [{"position": 1, "amount": 5000}]})
    invoice = stored(creditor, "2026-11")
    (note,) = credit_notes(invoice.id)
    with app.test_request_context(), force_locale("nb"):
        response = credit_note_pdf_response(note, invoice)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.get_data())).pages)
    text = " ".join(text.split())
    for expected in ("Kreditnota", "CN-000001", "2026-11", "Feil måleravlesning", "Service 1", "25 %",
                     "40,00", "10,00", "50,00", "Ny totalsum"):
        assert expected in text, expected
    assert 'filename="credit-note-CN-000001.pdf"' in response.headers["Content-Disposition"]
