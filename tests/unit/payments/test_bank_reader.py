"""Reading a bank file in chunks, in a forked child process for a large file: the same credits as
reading it in the importing process, its problems raised in the parent, no child left behind."""

import multiprocessing
import sys

import pytest
from sqlalchemy import select

from app.billing.models import InvoiceStatus
from app.extensions import db
from app.payments.bank import reader
from app.payments.bank.models import BankEntry
from app.payments.bank.parsers import BankFileError, open_bank_file
from app.payments.bank.reader import credit_chunks
from app.payments.bank.services import import_bank_file
from tests.factories import make_creditor, make_invoice
from tests.support.bankfiles import OcrPayment, camt053, credit, ocr_giro

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child process is forked on Linux")

ACCOUNT = "15032080127"


def statement(n: int = 12) -> bytes:
    entries = [credit(100 + i, f"{1000 + i}", ref=f"R{i}") for i in range(n)]
    entries += [credit(5, "1", ref="D1", credit=False), credit(6, "2", ref="D2", reversal=True)]
    return camt053(ACCOUNT, entries)


def read(data: bytes, fork_above: int) -> tuple[list[list], int]:
    stream = open_bank_file(data)
    chunks = list(credit_chunks(stream, len(data), fork_above=fork_above))
    return chunks, stream.ignored


def test_forked_reading_gives_the_same_credits(monkeypatch):
    monkeypatch.setattr(reader, "CHUNK", 5)
    data = statement()
    here, ignored_here = read(data, fork_above=len(data))
    there, ignored_there = read(data, fork_above=0)
    assert [len(c) for c in there] == [5, 5, 2]
    assert there == here and ignored_there == ignored_here == 2
    assert multiprocessing.active_children() == []


def test_a_problem_in_the_child_is_raised_here():
    data = statement(40)
    broken = data[: len(data) * 2 // 3]  # the head is fine; the XML breaks off further in
    stream = open_bank_file(broken)
    with pytest.raises(BankFileError, match="not well-formed"):
        list(credit_chunks(stream, len(broken), fork_above=0))
    assert multiprocessing.active_children() == []


def test_a_consumer_that_stops_ends_the_child(monkeypatch):
    monkeypatch.setattr(reader, "CHUNK", 2)
    data = statement(30)
    chunks = credit_chunks(open_bank_file(data), len(data), fork_above=0)
    assert len(next(chunks)) == 2
    chunks.close()
    assert multiprocessing.active_children() == []


def test_ocr_files_are_read_here():
    data = ocr_giro(ACCOUNT, [OcrPayment(100, "1234567", serial=1)])
    chunks = list(credit_chunks(open_bank_file(data), len(data), fork_above=0))
    assert [[c.reference for c in chunk] for chunk in chunks] == [["1234567"]]


def test_an_import_read_by_a_child(session, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK", 2)
    creditor = make_creditor("NO", bank_account_no=ACCOUNT)
    invoices = [make_invoice(creditor, lines=n) for n in (1, 2, 3)]
    data = camt053(ACCOUNT, [credit(i.balance, i.payment_reference, ref=f"F{n}") for n, i in enumerate(invoices)]
                   + [credit(5, "999", ref="F9"), credit(7, "1", ref="F8", credit=False)])
    summary = import_bank_file(data, filename="large.xml", fork_above=0)
    assert (summary.entries, summary.matched, len(summary.kept), summary.ignored) == (4, 3, 1, 1)
    assert all(i.status == InvoiceStatus.PAID for i in invoices)
    assert len(db.session.scalars(select(BankEntry)).all()) == 4
    assert multiprocessing.active_children() == []
