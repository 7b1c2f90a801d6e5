"""Matching bank credits to invoices: by KID or RF reference, by the invoice number in the text, by
amount and payer's name; never across creditors, never a guess; every entry once, every file once."""

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select
from stdnum import iban as stdnum_iban

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.billing.services import cancel_invoice, transition
from app.creditors.models import Creditor
from app.creditors.references import make_reference
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.payments.bank.matching import account_key, name_key, number_tokens, reference_key
from app.payments.bank.models import BankEntry, BankImport, EntryStatus, KeptReason
from app.payments.bank.services import import_bank_file, open_entries
from app.payments.models import Payment, PaymentAttempt
from app.payments.services import new_attempt
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.support.bankfiles import camt053, camt054, credit

NO_ACCOUNTS = ("15032080127", "15032080135", "15032080143")
DE_IBAN = "DE62370400440532013001"
BOOKED = datetime(2026, 11, 20, tzinfo=UTC)


def no_creditor(account: str = NO_ACCOUNTS[0], **overrides):
    return make_creditor("NO", bank_account_no=account, **overrides)


def invoice_for(creditor, name: str = "Kari Nordmann", customer_ref: str | None = None, lines: int = 1, **overrides):
    customer = dict(invoice_payload()["customer"], name=name, external_ref=customer_ref or f"C-{name}")
    return make_invoice(creditor, lines=lines, customer=customer, **overrides)


def run(data: bytes, name: str = "bank.xml"):
    return import_bank_file(data, filename=name)


def entry(bank_ref: str) -> BankEntry:
    return db.session.scalar(select(BankEntry).where(BankEntry.bank_ref == bank_ref))


def payments_of(invoice) -> list[Payment]:
    return list(db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.id)))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


class TestNormalising:
    @pytest.mark.parametrize(("a", "b"), [
        ("Kari Nordmann", "NORDMANN KARI"), ("Kari Nordmann", "Nordmann, Kari"), ("Kari  Nordmann ", "kari nordmann"),
        ("Øyvind Åsen", "OYVIND ASEN"), ("Zoë Müller-Lüdenscheidt", "ZOE MULLER LUDENSCHEIDT"),
        ("Ærlig Bæk", "aerlig baek"),
    ])
    def test_same_name(self, a, b):
        assert name_key(a) == name_key(b)

    def test_different_names(self):
        assert name_key("Kari Nordmann") != name_key("Kari Nordmann-Hansen")
        assert name_key("Kari Nordmann") != name_key("Kari")
        assert name_key(None) == name_key("") == ""

    def test_accounts_references_tokens(self):
        assert account_key("NO93 8601 1117 947") == account_key("8601.11.17947") == "86011117947"
        assert account_key("de62 3704 0044 0532 0130 01") == DE_IBAN
        assert reference_key(" rf18 5390 0754 7034 ") == "RF18539007547034"
        assert reference_key("0012345") == "0012345"
        assert number_tokens("Faktura: 100123, 100124. (INV-7) takk") == {"100123", "100124", "INV-7"}
        assert number_tokens(None) == set()


class TestByReference:
    def test_kid_settles_the_invoice(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        total = invoice.balance
        summary = run(camt053(creditor.bank_account_no, [credit(total, invoice.payment_reference, ref="T1")]))
        assert (summary.matched, summary.kept, summary.duplicates) == (1, [], 0)
        assert summary.matched_amounts == {"NOK": total}
        assert invoice.status == InvoiceStatus.PAID and invoice.balance == 0
        (payment,) = payments_of(invoice)
        assert (payment.provider, payment.provider_payment_id, payment.method, payment.amount, payment.refund_due) == (
            "bank_transfer", f"{creditor.bank_account_no}:T1", "bank_transfer", total, 0)
        assert payment.received_at == BOOKED
        recorded = entry("T1")
        assert (recorded.status, recorded.invoice_id, recorded.payment_id, recorded.creditor_id) == (
            EntryStatus.MATCHED, invoice.id, payment.id, creditor.id)
        assert recorded.reason is None and recorded.note == ""
        kinds = [(e.kind, e.actor) for e in invoice.events if e.actor == "bank_import"]
        assert kinds == [("payment_recorded", "bank_import"), ("status_changed", "bank_import")]

    def test_rf_reference_is_compared_compact(self, session):
        creditor = make_creditor("DE", iban=DE_IBAN)
        invoice = invoice_for(creditor)
        spaced = stdnum_iban.format(invoice.payment_reference).lower()  # "rf18 5390 …"
        data = camt053(stdnum_iban.format(DE_IBAN), [credit(invoice.balance, spaced, ref="R1", currency="EUR")],
                       currency="EUR")
        assert run(data).matched == 1 and invoice.status == InvoiceStatus.PAID

    def test_a_kid_is_not_an_rf_reference(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        wrapped = make_reference("rf", invoice.payment_reference)  # the KID inside an RF: not the invoice's reference
        summary = run(camt053(creditor.bank_account_no, [credit(invoice.balance, wrapped, ref="R2")]))
        assert summary.matched == 0 and [k.reason for k in summary.kept] == [KeptReason.REFERENCE_NOT_FOUND]
        assert invoice.status == InvoiceStatus.OPEN

    def test_unknown_reference_is_kept_even_when_amount_and_name_fit(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        data = camt053(creditor.bank_account_no, [credit(invoice.balance, "99999999", payer="Kari Nordmann", ref="U")])
        summary = run(data)
        kept = entry("U")
        assert summary.matched == 0 and invoice.status == InvoiceStatus.OPEN
        assert (kept.status, kept.reason, kept.details) == (EntryStatus.UNMATCHED, KeptReason.REFERENCE_NOT_FOUND,
                                                            {"reference": "99999999"})
        assert "99999999" in kept.note

    def test_another_creditors_reference_is_not_matched(self, session):
        first, second = no_creditor(NO_ACCOUNTS[0]), no_creditor(NO_ACCOUNTS[1])
        theirs = invoice_for(first)
        summary = run(camt053(second.bank_account_no, [credit(theirs.balance, theirs.payment_reference, ref="X")]))
        assert summary.matched == 0 and theirs.status == InvoiceStatus.OPEN
        assert (entry("X").creditor_id, entry("X").reason) == (second.id, KeptReason.REFERENCE_NOT_FOUND)

    def test_unknown_account(self, session):
        no_creditor()
        summary = run(camt053("15032080143", [credit(100, "1234567", ref="Z")]))
        kept = entry("Z")
        assert summary.matched == 0 and kept.creditor_id is None and kept.reason == KeptReason.UNKNOWN_ACCOUNT
        assert kept.details == {"account": "15032080143"} and "15032080143" in kept.note

    def test_an_account_two_creditors_have_is_not_guessed(self, session):
        first, second = no_creditor(slug="shared-a"), no_creditor(slug="shared-b")
        invoice = invoice_for(first)
        run(camt053(first.bank_account_no, [credit(invoice.balance, invoice.payment_reference, ref="S")]))
        kept = entry("S")
        assert kept.reason == KeptReason.SHARED_ACCOUNT and kept.details["creditors"] == ["shared-a", "shared-b"]
        assert invoice.status == InvoiceStatus.OPEN and second.id

    def test_currency_mismatch_is_kept(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        run(camt053(creditor.bank_account_no, [credit(invoice.balance, invoice.payment_reference, ref="C",
                                                      currency="EUR")]))
        kept = entry("C")
        assert kept.reason == KeptReason.CURRENCY_MISMATCH and invoice.status == InvoiceStatus.OPEN
        assert kept.details == {"currency": "EUR", "invoice": invoice.number, "invoice_currency": "NOK"}

    def test_a_norwegian_iban_is_the_same_account(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        iban = "NO" + stdnum_iban.calc_check_digits("NO00" + creditor.bank_account_no) + creditor.bank_account_no
        assert run(camt053(iban, [credit(invoice.balance, invoice.payment_reference, ref="I")])).matched == 1
        assert entry("I").account == creditor.bank_account_no


class TestWithoutReference:
    def test_amount_and_name(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor, name="Øyvind Åsen")
        invoice_for(creditor, name="Kari Nordmann", lines=2)
        summary = run(camt053(creditor.bank_account_no, [credit(invoice.balance, payer="ASEN, OYVIND", ref="N")]))
        assert summary.matched == 1 and invoice.status == InvoiceStatus.PAID and entry("N").invoice_id == invoice.id

    def test_two_invoices_fit_ambiguous(self, session):
        creditor = no_creditor()
        first = invoice_for(creditor)
        second = invoice_for(creditor)  # the same customer, the same amount
        summary = run(camt053(creditor.bank_account_no, [credit(first.balance, payer="Kari Nordmann", ref="A")]))
        kept = entry("A")
        assert summary.matched == 0 and kept.status == EntryStatus.AMBIGUOUS
        assert kept.details == {"invoices": [first.number, second.number]}
        assert first.number in kept.note and second.number in kept.note
        assert first.status == second.status == InvoiceStatus.OPEN

    @pytest.mark.parametrize(("amount_delta", "payer"), [(0, "Ola Nordmann"), (1, "Kari Nordmann"), (0, None)])
    def test_no_single_fit(self, session, amount_delta, payer):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        run(camt053(creditor.bank_account_no, [credit(invoice.balance + amount_delta, payer=payer, ref="M")]))
        assert (entry("M").status, entry("M").reason) == (EntryStatus.UNMATCHED, KeptReason.NO_MATCH)
        assert invoice.status == InvoiceStatus.OPEN

    def test_paid_invoices_are_not_candidates(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        total = invoice.balance
        run(camt053(creditor.bank_account_no, [credit(total, invoice.payment_reference, ref="P1")]), "first.xml")
        run(camt053(creditor.bank_account_no, [credit(total, payer="Kari Nordmann", ref="P2")]), "second.xml")
        assert entry("P2").reason == KeptReason.NO_MATCH and len(payments_of(invoice)) == 1

    def test_invoice_number_in_the_text(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        text = f"Faktura {invoice.number}"
        run(camt053(creditor.bank_account_no, [credit(100, ustrd=text, payer="Someone", ref="T")]))
        assert entry("T").invoice_id == invoice.id and invoice.status == InvoiceStatus.PARTIALLY_PAID

    def test_kid_in_the_text(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        run(camt053(creditor.bank_account_no, [credit(invoice.balance, ustrd=f"KID {invoice.payment_reference}",
                                                      ref="K")]))
        assert entry("K").status == EntryStatus.MATCHED and invoice.status == InvoiceStatus.PAID

    def test_two_numbers_in_the_text_ambiguous(self, session):
        creditor = no_creditor()
        first, second = invoice_for(creditor), invoice_for(creditor, lines=2)
        run(camt053(creditor.bank_account_no, [credit(500, ustrd=f"{first.number} og {second.number}", ref="T2")]))
        assert entry("T2").status == EntryStatus.AMBIGUOUS
        assert entry("T2").details == {"invoices": [first.number, second.number]}

    def test_only_whole_tokens(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        # the number with one more digit, which must not happen to be its KID (the number and a check digit)
        longer = next(invoice.number + d for d in "9876" if invoice.number + d != invoice.payment_reference)
        run(camt053(creditor.bank_account_no, [credit(100, ustrd=f"ref {longer} x{invoice.number}", ref="T3")]))
        assert entry("T3").reason == KeptReason.NO_MATCH


class TestOnce:
    def test_an_entry_seen_in_054_then_053_is_settled_once(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        payment = credit(invoice.balance, invoice.payment_reference, ref="BANK-1")
        first = run(camt054(creditor.bank_account_no, [payment], statement_id="NTF-1"), "intraday.xml")
        other = invoice_for(creditor, lines=2)
        second = run(camt053(creditor.bank_account_no, [payment, credit(other.balance, other.payment_reference,
                                                                        ref="BANK-2")]), "day.xml")
        assert (first.matched, second.matched, second.duplicates, second.entries) == (1, 1, 1, 2)
        assert len(payments_of(invoice)) == 1 and invoice.amount_paid == invoice.total
        assert count(BankEntry) == 2
        imports = db.session.scalars(select(BankImport).order_by(BankImport.id)).all()
        assert [(i.entries, i.matched, i.kept, i.duplicates) for i in imports] == [(1, 1, 0, 0), (2, 1, 0, 1)]

    def test_the_same_entry_twice_in_one_file(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        payment = credit(invoice.balance, invoice.payment_reference, ref="TWICE")
        summary = run(camt053(creditor.bank_account_no, [payment, payment]))
        assert (summary.matched, summary.duplicates) == (1, 1) and len(payments_of(invoice)) == 1

    def test_the_same_file_twice_changes_nothing(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        data = camt053(creditor.bank_account_no, [credit(invoice.balance, invoice.payment_reference, ref="F"),
                                                  credit(5, "123", ref="G")])
        run(data)
        tables = (Payment, BankEntry, InvoiceEvent, OutboxMessage, BankImport)
        before = [count(table) for table in tables]
        again = run(data, "renamed.xml")
        assert again.already_imported and again.matched == 0 and again.file_format == "camt.053"
        assert [count(table) for table in tables] == before


class TestSettlement:
    def test_overpayment_is_matched_and_owed_back(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        total = invoice.balance
        run(camt053(creditor.bank_account_no, [credit(total + 5000, invoice.payment_reference, ref="O")]))
        (payment,) = payments_of(invoice)
        assert entry("O").status == EntryStatus.MATCHED and payment.refund_due == 5000
        assert invoice.status == InvoiceStatus.PAID and "refund_due" in [e.kind for e in invoice.events]

    def test_two_payments_of_one_invoice_in_one_file(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        total = invoice.balance
        run(camt053(creditor.bank_account_no, [credit(total, invoice.payment_reference, ref="D1"),
                                               credit(total, invoice.payment_reference, ref="D2")]))
        assert [p.refund_due for p in payments_of(invoice)] == [0, total]
        assert invoice.amount_paid == 2 * total and invoice.status == InvoiceStatus.PAID

    def test_a_part_by_reference_then_the_rest_by_amount_and_name(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        total = invoice.balance
        run(camt053(creditor.bank_account_no, [credit(1000, invoice.payment_reference, ref="H1"),
                                               credit(total - 1000, payer="Kari Nordmann", ref="H2")]))
        assert entry("H2").invoice_id == invoice.id and invoice.status == InvoiceStatus.PAID

    def test_a_cancelled_invoice_is_owed_back_in_full(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        cancel_invoice(invoice, actor="test")
        run(camt053(creditor.bank_account_no, [credit(700, invoice.payment_reference, ref="X1")]))
        (payment,) = payments_of(invoice)
        assert payment.refund_due == 700 and invoice.amount_paid == 0 and invoice.status == InvoiceStatus.CANCELLED
        assert "payment_to_refund" in [e.kind for e in invoice.events]

    def test_a_disputed_invoice_stays_disputed_until_paid(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        transition(invoice, InvoiceStatus.DISPUTED, actor="test")
        run(camt053(creditor.bank_account_no, [credit(1000, invoice.payment_reference, ref="Q1")]))
        assert invoice.status == InvoiceStatus.DISPUTED and invoice.amount_paid == 1000

    def test_receipt_and_open_attempts(self, session):
        creditor = no_creditor()
        invoice = invoice_for(creditor)
        attempt = new_attempt(invoice, "simulator", invoice.balance)
        run(camt053(creditor.bank_account_no, [credit(invoice.balance, invoice.payment_reference, ref="R")]))
        (payment,) = payments_of(invoice)
        receipt = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "payment_receipt"))
        assert (receipt.recipient, receipt.payload, receipt.idempotency_key) == (
            "kari@example.test", {"payment_id": payment.id}, f"payment_receipt:{payment.public_ref}")
        assert db.session.get(PaymentAttempt, attempt.id).status == "cancelled"


class TestAgentsList:
    def test_open_entries_by_creditor(self, session):
        first, second = no_creditor(NO_ACCOUNTS[0]), no_creditor(NO_ACCOUNTS[1])
        invoice = invoice_for(first)
        run(camt053(first.bank_account_no, [credit(invoice.balance, invoice.payment_reference, ref="L1"),
                                            credit(10, "1", ref="L2")]))
        run(camt053(second.bank_account_no, [credit(20, "2", ref="L3")]))
        run(camt053("15032080143", [credit(30, "3", ref="L4")]))
        assert [e.bank_ref for e in open_entries(first.id)] == ["L2"]
        assert [e.bank_ref for e in open_entries()] == ["L2", "L3", "L4"]


def test_parallel_imports_of_one_payment_settle_it_once(app):
    """The same bank entry in two files imported at once (the day's camt.054 and camt.053), in
    real transactions on PostgreSQL: one payment, whichever commits first."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("concurrency is tested on PostgreSQL (CI sets TEST_DATABASE_URL)")
        creditor = no_creditor(NO_ACCOUNTS[2], slug="bank-parallel")
        invoice = invoice_for(creditor)
        db.session.commit()
        invoice_id, creditor_id, total, kid = invoice.id, creditor.id, invoice.balance, invoice.payment_reference
        db.session.remove()
    payment = credit(total, kid, ref="PAR-1")
    files = [camt054(NO_ACCOUNTS[2], [payment], statement_id=f"N{i}") if i % 2 else
             camt053(NO_ACCOUNTS[2], [payment], statement_id=f"S{i}") for i in range(6)]
    errors, barrier = [], threading.Barrier(len(files))

    def load(i):
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                import_bank_file(files[i], filename=f"par-{i}.xml")
                db.session.commit()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            with app.app_context():
                db.session.remove()

    threads = [threading.Thread(target=load, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        with app.app_context():
            payments = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice_id)).all()
            invoice = db.session.get(Invoice, invoice_id)
            assert len(payments) == 1 and invoice.amount_paid == total and invoice.status == InvoiceStatus.PAID
            assert all("IntegrityError" in e or "deadlock" in e.lower() for e in errors), errors
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(delete(OutboxMessage).where(OutboxMessage.creditor_id == creditor_id))
            conn.execute(delete(BankEntry).where(BankEntry.account == NO_ACCOUNTS[2]))
            conn.execute(delete(BankImport).where(BankImport.filename.like("par-%")))
            conn.execute(delete(Payment).where(Payment.invoice_id == invoice_id))
            conn.execute(delete(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice_id))
            conn.execute(delete(Invoice).where(Invoice.id == invoice_id))
            conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
            conn.execute(delete(Creditor).where(Creditor.id == creditor_id))
