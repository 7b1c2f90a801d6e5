"""`flask bank import` and `flask bank unmatched` through Flask's CLI runner. Commands commit; under
the `session` fixture a commit is a savepoint, so data a test sets up is committed first."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.billing.models import InvoiceEvent, InvoiceStatus
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.payments.bank.models import BankEntry, BankImport
from app.payments.models import Payment
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.support.bankfiles import BILLION_LAUGHS, OcrPayment, camt053, credit, ocr_giro

ACCOUNT = "15032080127"
TABLES = (Payment, BankEntry, BankImport, InvoiceEvent, OutboxMessage)


@pytest.fixture
def cli(app, session):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=[str(a) for a in args])

    return invoke


@pytest.fixture
def creditor(session):
    creditor = make_creditor("NO", bank_account_no=ACCOUNT, slug="fjordkraft")
    db.session.commit()
    return creditor


def invoice_for(creditor, name="Kari Nordmann", lines=1):
    customer = dict(invoice_payload()["customer"], name=name, external_ref=f"C-{name}")
    invoice = make_invoice(creditor, lines=lines, customer=customer)
    db.session.commit()
    return invoice


def counts() -> dict[str, int]:
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m)) for m in TABLES}


def write(tmp_path, data: bytes, name: str = "statement.xml") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("command", [("bank",), ("bank", "import"), ("bank", "unmatched")], ids=" ".join)
def test_help(app, command):
    result = app.test_cli_runner().invoke(args=[*command, "--help"])
    assert result.exit_code == 0, result.output
    assert f" {' '.join(command)} [OPTIONS]" in result.output


def test_import_settles_and_reports(cli, creditor, tmp_path):
    paid, by_name = invoice_for(creditor), invoice_for(creditor, name="Ola Hansen", lines=2)
    path = write(tmp_path, camt053(ACCOUNT, [
        credit(paid.balance, paid.payment_reference, ref="T1"),
        credit(by_name.balance, payer="HANSEN OLA", ref="T2"),
        credit(4200, "99999999", payer="Per Person", ref="T3"),
        credit(100, "1", ref="T4", credit=False),
    ]))
    result = cli("bank", "import", path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "statement.xml (camt.053): 3 credits." in out
    assert "matched and settled: 2 (NOK" in out and "kept for an agent: 1" in out
    assert "reference_not_found: 1" in out and "ignored (debits, reversals, not booked): 1" in out
    assert ("2026-11-20 NOK 42.00 Per Person ref 99999999: "
            "No invoice of this creditor has the reference 99999999.") in out
    db.session.expire_all()
    assert paid.status == by_name.status == InvoiceStatus.PAID
    assert counts()["payments"] == 2 and counts()["bank_entries"] == 3


def test_same_file_again_changes_nothing(cli, creditor, tmp_path):
    invoice = invoice_for(creditor)
    path = write(tmp_path, camt053(ACCOUNT, [credit(invoice.balance, invoice.payment_reference, ref="T1")]))
    assert cli("bank", "import", path).exit_code == 0
    before = counts()
    again = cli("bank", "import", path)
    assert again.exit_code == 0 and "was imported before" in again.stdout and "nothing was changed" in again.stdout
    assert counts() == before


@pytest.mark.parametrize(("data", "problem"), [
    (b"not a bank file", "neither ISO 20022 XML nor a Nets OCR giro file"),
    (BILLION_LAUGHS, "DTD"),
    (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>',
     "not well-formed"),
], ids=["garbage", "entity bomb", "truncated"])
def test_unreadable_file_changes_nothing(cli, creditor, tmp_path, data, problem):
    before = counts()
    result = cli("bank", "import", write(tmp_path, data, "bad.xml"))
    assert result.exit_code == 1
    assert "bad.xml was not imported" in result.stderr and problem in result.stderr
    assert "Nothing was changed." in result.stderr
    assert counts() == before


def test_invalid_entry_late_in_the_file_changes_nothing(cli, creditor, tmp_path):
    invoice = invoice_for(creditor)
    data = camt053(ACCOUNT, [credit(invoice.balance, invoice.payment_reference, ref="T1"), credit(1, "2", ref="T2")])
    data = data.replace(b">0.01</Amt>", b">0.011</Amt>")
    before = counts()
    result = cli("bank", "import", write(tmp_path, data))
    assert result.exit_code == 1 and "decimals" in result.stderr and counts() == before
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.OPEN


def test_ocr_giro_file_and_format_option(cli, creditor, tmp_path):
    invoice = invoice_for(creditor)
    path = write(tmp_path, ocr_giro(ACCOUNT, [OcrPayment(invoice.balance, invoice.payment_reference, serial=1),
                                             OcrPayment(500, "1234567", serial=2, reversal=True)]), "ocr.txt")
    wrong = cli("bank", "import", path, "--format", "camt.053")
    assert wrong.exit_code == 1 and "not imported" in wrong.stderr
    result = cli("bank", "import", path, "--format", "ocr")
    assert result.exit_code == 0, result.output
    assert "ocr.txt (ocr): 1 credit." in result.stdout and "ignored (debits, reversals, not booked): 1" in result.stdout
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.PAID


def test_bad_format_option(cli, creditor, tmp_path):
    result = cli("bank", "import", write(tmp_path, b"x"), "--format", "mt940")
    assert result.exit_code == 2 and "Invalid value for '--format'" in result.stderr


def test_unmatched_lists_what_agents_decide(cli, creditor, tmp_path):
    other = make_creditor("NO", bank_account_no="15032080135", slug="other")
    db.session.commit()
    first, second = invoice_for(creditor), invoice_for(creditor)  # same customer and amount: ambiguous by name
    assert cli("bank", "import", write(tmp_path, camt053(ACCOUNT, [
        credit(first.balance, payer="Kari Nordmann", ref="A1"),
        credit(300, "7777777", ref="A2"),
    ]), "a.xml")).exit_code == 0
    assert cli("bank", "import", write(tmp_path, camt053(other.bank_account_no, [credit(400, "1", ref="B1")]),
                                       "b.xml")).exit_code == 0

    mine = cli("bank", "unmatched", "--creditor", "fjordkraft")
    assert mine.exit_code == 0, mine.output
    assert "ambiguous  fjordkraft" in mine.stdout and f"Several invoices fit this payment: {first.number}, " \
        f"{second.number}." in mine.stdout
    assert "No invoice of this creditor has the reference 7777777." in mine.stdout
    assert "B1" not in mine.stdout and "2 entries waiting for an agent." in mine.stdout

    every = cli("bank", "unmatched")
    assert "3 entries waiting for an agent." in every.stdout and "other" in every.stdout

    assert cli("bank", "unmatched", "--creditor", "nobody").exit_code == 1
    empty = make_creditor("NO", bank_account_no="15032080143", slug="empty")
    db.session.commit()
    assert "No bank entries are waiting" in cli("bank", "unmatched", "--creditor", empty.slug).stdout
