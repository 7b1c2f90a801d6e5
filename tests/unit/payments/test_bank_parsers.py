"""Bank file parsers: camt.053 and camt.054 of every version, batch bookings, what is not a
credit, exact amounts, bank references, OCR giro through netsgiro, and hostile XML refused."""

from datetime import UTC, date, datetime

import pytest

from app.payments.bank.parsers import (
    BankFileError,
    Credit,
    detect_format,
    minor_units,
    parse_bank_file,
)
from tests.support.bankfiles import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    Entry,
    OcrPayment,
    Tx,
    camt,
    camt053,
    camt054,
    credit,
    ocr_giro,
)

IBAN = "NO9386011117947"
MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)


def credits(data: bytes, file_format: str | None = None) -> list[Credit]:
    return parse_bank_file(data, file_format).credits


class TestCamt053:
    def test_version_02_layout(self):
        data = camt053(IBAN, [credit(123450, "1234567", payer="Kari Nordmann", ref="TX-1")], version=2)
        assert b"<Sts>BOOK</Sts>" in data and b"<TxAmt>" in data and b"<Dbtr><Nm>" in data
        assert credits(data) == [Credit(
            account=IBAN, bank_ref="TX-1", booked_on=date(2026, 11, 20), booked_at=MIDNIGHT, amount=123450,
            currency="NOK", reference="1234567", remittance=None, payer_name="Kari Nordmann",
        )]

    def test_version_08_layout(self):
        data = camt053(IBAN, [credit(99, "RF18539007547034", payer="Ola Nordmann", ref="TX-2")], version=8)
        assert b"<Sts><Cd>BOOK</Cd></Sts>" in data and b"<Dbtr><Pty><Nm>" in data
        (found,) = credits(data)
        assert (found.amount, found.reference, found.payer_name, found.bank_ref) == (99, "RF18539007547034",
                                                                                     "Ola Nordmann", "TX-2")

    @pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7, 8, 9])
    @pytest.mark.parametrize("kind", ["053", "054"])
    def test_every_version_reads_the_same(self, kind, version):
        data = camt(kind, "1503.20.80119", [credit(5000, "1234567", payer="Kari", ref="R1")], version=version)
        assert detect_format(data) == f"camt.{kind}"
        (found,) = credits(data)
        assert (found.account, found.amount, found.reference, found.payer_name) == ("15032080119", 5000,
                                                                                    "1234567", "Kari")

    def test_namespace_prefix_and_no_namespace(self):
        for data in (camt053(IBAN, [credit(1, "42", ref="A")], prefix="ns2"),
                     camt053(IBAN, [credit(1, "42", ref="A")], namespace=False)):
            assert [(c.amount, c.reference) for c in credits(data)] == [(1, "42")]

    def test_unstructured_remittance_lines_are_joined(self):
        entry = Entry([Tx(700, ustrd="Faktura 100123", ref="U1")])
        entry.txs[0].ustrd = "Faktura 100123"
        data = camt053(IBAN, [entry]).replace(b"<Ustrd>Faktura 100123</Ustrd>",
                                              b"<Ustrd>Faktura 100123</Ustrd><Ustrd> og 100124 </Ustrd>")
        (found,) = credits(data)
        assert found.remittance == "Faktura 100123 og 100124" and found.reference is None

    def test_booking_time_in_utc(self):
        data = camt053(IBAN, [credit(1, "42", ref="A", booked_at="2026-11-20T09:30:00+01:00")])
        (found,) = credits(data)
        assert found.booked_at == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
        assert found.booked_on == date(2026, 11, 20)


class TestStatements:
    def test_two_statements_of_two_accounts(self):
        first = camt053(IBAN, [credit(1, "1", ntry_ref="1")], statement_id="S1").decode()
        second = camt053("15032080119", [credit(2, "2", ntry_ref="1")], statement_id="S2").decode()
        statement = second[second.index("<Stmt>"):second.index("</Stmt>") + len("</Stmt>")]
        both = first.replace("</Stmt>", "</Stmt>" + statement, 1).encode()
        assert [(c.account, c.bank_ref, c.amount) for c in credits(both)] == [
            (IBAN, "S1/1", 1), ("15032080119", "S2/1", 2)]

    def test_account_after_the_entries_is_refused(self):
        data = camt053(IBAN, [credit(1, "1", ref="A")]).decode()
        account = data[data.index("<Acct>"):data.index("</Acct>") + len("</Acct>")]
        moved = data.replace(account, "").replace("</Stmt>", account + "</Stmt>").encode()
        with pytest.raises(BankFileError, match="before its Stmt's account"):
            parse_bank_file(moved)

    def test_id_after_the_account_is_refused(self):
        data = camt053(IBAN, [credit(1, "1", ref="A")], statement_id="S1").decode()
        moved = data.replace("<Id>S1</Id>", "", 1).replace("</Acct>", "</Acct><Id>S1</Id>", 1).encode()
        with pytest.raises(BankFileError, match="do not come first"):
            parse_bank_file(moved)


class TestCamt054:
    def test_notification_entries(self):
        data = camt054("15032080119", [credit(100, "1234567", ref="N1"), credit(200, "7654321", ref="N2")])
        parsed = parse_bank_file(data)
        assert parsed.file_format == "camt.054"
        assert [(c.bank_ref, c.amount) for c in parsed.credits] == [("N1", 100), ("N2", 200)]

    def test_the_same_payment_has_the_same_key_in_054_and_053(self):
        entry = credit(100, "1234567", ref="BANK-77")
        (in_054,) = credits(camt054(IBAN, [entry], statement_id="NTF-1"))
        (in_053,) = credits(camt053(IBAN, [credit(5, "1", ref="OTHER"), entry], statement_id="STMT-9"))[1:]
        assert (in_054.account, in_054.bank_ref) == (in_053.account, in_053.bank_ref)


class TestWhatIsACredit:
    def test_debits_reversals_and_unbooked_entries_are_ignored(self):
        data = camt053(IBAN, [
            credit(100, "1", ref="A"),
            credit(200, "2", ref="B", credit=False),
            credit(300, "3", ref="C", reversal=True),
            credit(400, "4", ref="D", status="PDNG"),
            credit(500, "5", ref="E", status="INFO"),
        ])
        parsed = parse_bank_file(data)
        assert [c.reference for c in parsed.credits] == ["1"] and parsed.ignored == 4

    def test_batch_booking_gives_one_credit_per_transaction(self):
        batch = Entry([Tx(100, "1111", payer="A", ref="T1"), Tx(250, "2222", payer="B", ref="T2"),
                       Tx(50, ustrd="Faktura 9", payer="C", ref="T3")], acct_svcr_ref="BATCH-1")
        found = credits(camt053(IBAN, [batch]))
        assert [(c.bank_ref, c.amount, c.reference, c.payer_name) for c in found] == [
            ("T1", 100, "1111", "A"), ("T2", 250, "2222", "B"), ("T3", 50, None, "C")]

    def test_batch_without_transaction_refs_numbers_the_entry_ref(self):
        batch = Entry([Tx(100, "1111"), Tx(250, "2222")], acct_svcr_ref="BATCH-2")
        assert [c.bank_ref for c in credits(camt053(IBAN, [batch]))] == ["BATCH-2/1", "BATCH-2/2"]

    def test_debit_transaction_inside_a_credit_entry_is_left_out(self):
        batch = Entry([Tx(100, "1111", ref="T1"), Tx(30, "2222", ref="T2", debit=True)], amount=70,
                      acct_svcr_ref="B")
        assert [c.reference for c in credits(camt053(IBAN, [batch]))] == ["1111"]

    def test_batch_without_amounts_is_one_credit_of_the_entry(self):
        batch = Entry([Tx(None, "1111"), Tx(None, "2222")], amount=900, acct_svcr_ref="B3")
        assert [(c.amount, c.reference, c.bank_ref) for c in credits(camt053(IBAN, [batch]))] == [(900, None, "B3")]

    def test_entry_without_details(self):
        entry = Entry([], amount=1234, acct_svcr_ref="E1", info="Innbetaling 100123")
        (found,) = credits(camt053(IBAN, [entry]))
        assert (found.amount, found.reference, found.remittance) == (1234, None, "Innbetaling 100123")


class TestAmounts:
    @pytest.mark.parametrize(("text", "currency", "minor"), [
        ("1234.50", "NOK", 123450), ("0.10", "EUR", 10), ("0.1", "EUR", 10), ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500), ("12.345", "KWD", 12345), ("99999999999.99", "EUR", 9999999999999),
        (".5", "NOK", 50), ("5.", "NOK", 500), ("+7.25", "EUR", 725), ("0.50000", "EUR", 50),
    ])
    def test_exact_minor_units(self, text, currency, minor):
        assert minor_units(text, currency) == minor

    @pytest.mark.parametrize(("text", "currency"), [
        ("1.005", "NOK"), ("10.5", "JPY"), ("abc", "NOK"), ("-5.00", "NOK"), ("NaN", "NOK"), ("1.00", "XYZ"),
        ("1e2", "NOK"), ("", "NOK"), ("1,50", "NOK"), ("١٢", "NOK"), ("Infinity", "EUR"),
    ])
    def test_refused(self, text, currency):
        with pytest.raises(BankFileError):
            minor_units(text, currency)

    def test_in_a_file(self):
        data = camt053(IBAN, [credit(1, "42", ref="A")]).replace(b">0.01</Amt>", b">0.015</Amt>")
        with pytest.raises(BankFileError, match="decimals"):
            parse_bank_file(data)


class TestBankReference:
    def test_entry_ref_when_the_transaction_has_none(self):
        assert credits(camt053(IBAN, [credit(1, "42", acct_svcr_ref="ENTRY-9")]))[0].bank_ref == "ENTRY-9"

    def test_ntry_ref_is_qualified_by_the_statement(self):
        first = credits(camt053(IBAN, [credit(1, "42", ntry_ref="1")], statement_id="S-1"))[0]
        second = credits(camt053(IBAN, [credit(1, "42", ntry_ref="1")], statement_id="S-2"))[0]
        assert (first.bank_ref, second.bank_ref) == ("S-1/1", "S-2/1")

    def test_hash_is_stable_and_positional(self):
        entries = [credit(1, "42"), credit(1, "42")]  # two identical payments, no reference from the bank
        once, again = credits(camt053(IBAN, entries)), credits(camt053(IBAN, entries))
        assert [c.bank_ref for c in once] == [c.bank_ref for c in again]
        assert once[0].bank_ref != once[1].bank_ref and once[0].bank_ref.startswith("h:")

    def test_long_references_are_hashed_to_fit(self):
        (found,) = credits(camt053(IBAN, [credit(1, "42", ref="X" * 80)]))
        assert found.bank_ref.startswith("h:") and len(found.bank_ref) <= 60


class TestOcrGiro:
    def test_transactions_through_netsgiro(self):
        data = ocr_giro("15032080119", [
            OcrPayment(123450, "1234567", serial=1),
            OcrPayment(99, "000123", serial=2),
            OcrPayment(5000, "1234567", serial=3, reversal=True),
            OcrPayment(700, "7654321", serial=4, text="Hilsen Kari"),
        ])
        assert detect_format(data) == "ocr"
        parsed = parse_bank_file(data)
        assert parsed.ignored == 1
        assert [(c.account, c.amount, c.reference, c.currency, c.remittance) for c in parsed.credits] == [
            ("15032080119", 123450, "1234567", "NOK", None), ("15032080119", 99, "000123", "NOK", None),
            ("15032080119", 700, "7654321", "NOK", "Hilsen Kari")]
        refs = [c.bank_ref for c in parsed.credits]
        assert refs[0] == "20261120-13-20-1-00001" and len(set(refs)) == 3
        assert parsed.credits[0].booked_at == MIDNIGHT

    def test_incomplete_file_is_refused(self):
        lines = ocr_giro("15032080119", [OcrPayment(100, "1234567", serial=1)]).decode().splitlines()
        for broken in (lines[:-1], lines[:2] + lines[4:], [lines[0][:70], *lines[1:]]):
            with pytest.raises(BankFileError):
                parse_bank_file("\n".join(broken).encode())

    def test_format_override(self):
        data = ocr_giro("15032080119", [OcrPayment(100, "1234567", serial=1)])
        assert len(credits(data, "ocr")) == 1
        with pytest.raises(BankFileError):
            parse_bank_file(data, "camt.053")


class TestDetection:
    def test_override_must_fit(self):
        data = camt053(IBAN, [credit(1, "42", ref="A")])
        assert parse_bank_file(data, "camt.053").file_format == "camt.053"
        with pytest.raises(BankFileError, match="BkToCstmrDbtCdtNtfctn expected"):
            parse_bank_file(data, "camt.054")
        with pytest.raises(BankFileError):
            parse_bank_file(data, "ocr")

    @pytest.mark.parametrize("data", [
        b"", b"hello", b"%PDF-1.7", b"<html><body/></html>",
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08"><BkToCstmrAcctRpt/></Document>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn/></Document>',
    ])
    def test_unknown_content_is_refused(self, data):
        with pytest.raises(BankFileError):
            parse_bank_file(data)

    def test_truncated_xml_is_refused(self):
        data = camt053(IBAN, [credit(1, "42", ref="A"), credit(2, "43", ref="B")])
        with pytest.raises(BankFileError, match="well-formed"):
            parse_bank_file(data[: len(data) // 2])

    def test_statement_without_account_is_refused(self):
        data = camt053(IBAN, [credit(1, "42", ref="A")]).replace(f"<IBAN>{IBAN}</IBAN>".encode(), b"")
        with pytest.raises(BankFileError, match="account"):
            parse_bank_file(data)


class TestHostileXml:
    @pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity expansion", "external entity"])
    def test_entity_declarations_are_refused(self, data):
        with pytest.raises(BankFileError, match="DTD"):
            parse_bank_file(data)
        with pytest.raises(BankFileError):
            parse_bank_file(data, "camt.053")

    def test_any_dtd_is_refused(self):
        data = camt053(IBAN, [credit(1, "42", ref="A")]).replace(
            b"?>\n", b'?>\n<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/camt.dtd">\n', 1)
        with pytest.raises(BankFileError, match="DTD"):
            parse_bank_file(data)

    def test_undeclared_entity_in_the_body_is_refused(self):
        data = camt053(IBAN, [credit(1, "42", ref="A")]).replace(b"<Id>STMT-1</Id>", b"<Id>&xxe;</Id>")
        with pytest.raises(BankFileError, match="well-formed"):
            parse_bank_file(data)

    def test_dtd_after_the_root_is_refused(self):
        data = camt053(IBAN, [credit(1, "42", ref="A")]).replace(
            b"<BkToCstmrStmt>", b'<!DOCTYPE x [<!ENTITY a "b">]><BkToCstmrStmt>', 1)
        with pytest.raises(BankFileError):
            parse_bank_file(data)
