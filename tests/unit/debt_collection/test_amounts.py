"""What a case says is owed: principal, fees and interest apart, after credit notes, with payments
covering fees first, then interest, then principal."""

from __future__ import annotations

import pytest

from app.billing.corrections import LineCredit, issue_credit_note
from app.billing.services import import_invoice, record_payment
from app.debt_collection.case_file import split_amounts
from app.models import utcnow
from tests.factories import invoice_payload, make_creditor


@pytest.fixture
def invoice(app, session):
    with app.test_request_context():
        lines = [
            {"description": "Electricity", "quantity": "1", "unit_price": 80000, "vat_rate": 2500},
            {"description": "Reminder fee", "kind": "reminder_fee", "quantity": "1", "unit_price": 3500, "vat_rate": 0},
            {"description": "Late interest", "kind": "interest", "quantity": "1", "unit_price": 1200, "vat_rate": 0},
        ]
        payload = {**invoice_payload("NOK"), "lines": lines, "total": 100000 + 3500 + 1200}
        invoice, _created = import_invoice(make_creditor("NO"), payload, actor="test")
        yield invoice


def test_nothing_paid_everything_is_outstanding(invoice):
    amounts = split_amounts(invoice)
    assert amounts["billed"] == amounts["outstanding"] == {"principal": 100000, "fees": 3500, "interest": 1200,
                                                         "total": 104700}


def test_payments_cover_fees_then_interest_then_principal(invoice):
    record_payment(invoice, 4000, actor="test", paid_on=utcnow().date(), method="cash")
    assert split_amounts(invoice)["outstanding"] == {"principal": 100000, "fees": 0, "interest": 700, "total": 100700}
    record_payment(invoice, 50000, actor="test", paid_on=utcnow().date(), method="cash")
    assert split_amounts(invoice)["outstanding"] == {"principal": 50700, "fees": 0, "interest": 0, "total": 50700}


def test_credit_notes_come_off_the_line_they_credit(invoice):
    fee = next(line for line in invoice.lines if line.kind == "reminder_fee")
    issue_credit_note(invoice, [LineCredit(fee.id, fee.gross)], reason="Fee waived", actor="agent:1")
    amounts = split_amounts(invoice)
    assert amounts["billed"] == {"principal": 100000, "fees": 0, "interest": 1200, "total": 101200}
    assert amounts["billed"]["total"] == invoice.total
