"""Bank files in, one `Credit` per incoming payment out: ISO 20022 camt.053 (statements) and
camt.054 (debit/credit notifications), any version (.001.02 to .001.08 and later), and the Nets
"OCR giro" file of Norwegian KID payments.

Pure: no database, no Flask. `open_bank_file` checks a file's head at once (format, no DTD) and
then streams its credits, so that a large statement's first credits are used while the rest is
read; a problem further in raises `BankFileError` as it is met, and the import rolls back.
`parse_bank_file` reads a file whole.

XML safety. A DTD is where entity declarations live (the "billion laughs" expansion, external
entities reaching for local files or URLs), and XML allows one only in the prolog, before the
first element. defusedxml reads the prolog with DTDs forbidden (`_xml_head`); the rest is read
by the standard library's C parser, which then cannot meet a DTD (expat refuses one after the
first element) and refuses any entity but the five predefined ones. defusedxml's own iterparse
is the pure-Python parser: 3.7 s against 1.5 s for reading the elements of 100,000 entries.

Which credits: CdtDbtInd CRDT, booked (Sts BOOK, or Sts/Cd BOOK from version 06 on), not a
reversal (RvslInd true). An entry with several TxDtls (a batch booking) gives one credit per
TxDtls. Amounts are exact: integers from the digits, scaled by the currency's exponent.
Elements are found by local name in the document's own namespace, whichever version it is.

The bank reference, which with the account makes an entry unique across files (the same
payment in the day's camt.054 and in the camt.053), is the first of:

1. TxDtls/Refs/AcctSvcrRef: the bank's own reference of the transaction;
2. Ntry/AcctSvcrRef, with "/n" for the n-th credit of a batch entry;
3. Ntry/NtryRef prefixed with the statement's id: many banks number the entries of each
   statement 1, 2, 3..., so NtryRef alone would make the second statement's first payment a
   "duplicate" of the first statement's, and drop it;
4. "h:" and a hash of the statement's id, the entry's position in it, the transaction's position
   in the entry and the entry's content. Stable when the same statement is sent again; it
   cannot recognise one payment across a camt.054 and a camt.053 (the positions differ) and does
   not try: counting a payment twice is seen (a refund due), dropping one is not.

OCR giro transactions are keyed by Nets' settlement date, centre id, day code, partial
settlement number and serial number, which together identify a transaction at Nets.
"""

from __future__ import annotations

import gc
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element, ParseError, iterparse

import netsgiro
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import XMLParser as DefusedXMLParser
from netsgiro.records import TransmissionEnd
from netsgiro.records import parse as parse_records

from app.money import exponent, is_currency

CAMT_053, CAMT_054, OCR = "camt.053", "camt.054", "ocr"
FORMATS = (CAMT_053, CAMT_054, OCR)
# Per format: the message element under Document, and the element that holds one account's entries.
CAMT_ELEMENTS = {CAMT_053: ("BkToCstmrStmt", "Stmt"), CAMT_054: ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
OCR_START = b"NY000010"
MAX_BANK_REF = 60  # with "account:" in front it must fit Payment.provider_payment_id (100)
HEAD_CHUNK = 64 * 1024
DECIMAL = re.compile(r"\+?([0-9]+\.?[0-9]*|\.[0-9]+)")


class BankFileError(ValueError):
    """The file cannot be read as the bank file it is said to be; nothing from it may be used."""


@dataclass(frozen=True, slots=True)
class Credit:
    """One incoming payment to one of our creditors' accounts, as the bank reported it."""

    account: str  # the credited account, compact: an IBAN or a local account number
    bank_ref: str  # with the account, unique across files (see the module's docstring)
    booked_on: date
    booked_at: datetime  # UTC: the booking date at 00:00 UTC, or the booking time when the bank gives one
    amount: int  # minor units, > 0
    currency: str
    reference: str | None = None  # structured creditor reference (KID, RF), as given
    remittance: str | None = None  # unstructured remittance text
    payer_name: str | None = None


@dataclass
class ParsedFile:
    file_format: str
    credits: list[Credit] = field(default_factory=list)
    ignored: int = 0  # debits, reversals, entries not booked, zero amounts


@dataclass(eq=False)
class CreditStream:
    """A file's credits, read as they are iterated (once): a large statement need not be read
    whole before its first credits are used. `ignored` counts what was left out so far."""

    file_format: str
    read: Callable[[CreditStream], Iterator[Credit]]
    ignored: int = 0

    def __iter__(self) -> Iterator[Credit]:
        return self.read(self)


# --- detection --------------------------------------------------------------------------


def detect_format(data: bytes) -> str:
    """camt.053, camt.054 or ocr, from the content: the XML root's namespace (or, without one, the
    message element), or the OCR transmission's start record."""
    head = data[:HEAD_CHUNK].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(OCR_START):
        return OCR
    if head.startswith(b"<"):
        root, message = _xml_head(data)
        return _camt_kind(root, message)
    raise BankFileError("neither ISO 20022 XML nor a Nets OCR giro file")


def parse_bank_file(data: bytes, file_format: str | None = None) -> ParsedFile:
    """Every credit in the file. `file_format` overrides detection; the file must still be one."""
    stream = open_bank_file(data, file_format)
    credits = list(stream)
    return ParsedFile(stream.file_format, credits, stream.ignored)


def open_bank_file(data: bytes, file_format: str | None = None) -> CreditStream:
    """The file's credits as a stream. What can be checked at once is: the format (detected, or
    the one given confirmed), no DTD, the OCR file whole; a problem further into an XML file
    raises BankFileError while the stream is read."""
    if file_format is None:
        file_format = detect_format(data)
    elif file_format not in FORMATS:
        raise BankFileError(f"unknown format {file_format!r}; one of {', '.join(FORMATS)}")
    if file_format == OCR:
        parsed = parse_ocr(data)
        return CreditStream(OCR, lambda _stream: iter(parsed.credits), parsed.ignored)
    names, container = _camt_head(data, file_format)
    return CreditStream(file_format, lambda stream: _read_camt(data, names, container, stream))


def _local(tag: str) -> str:
    """'{urn:iso:...:camt.053.001.08}Ntry' -> 'Ntry': every version's elements by the same name."""
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:tag.index("}")] if tag.startswith("{") else ""


def _camt_kind(root: str, message: str | None) -> str:
    namespace = _namespace(root)
    for kind in (CAMT_053, CAMT_054):
        if f":{kind}." in namespace:
            return kind
    for kind, (message_element, _container) in CAMT_ELEMENTS.items():
        if message and _local(message) == message_element:
            return kind
    what = namespace.rpartition(":")[2] or _local(root)
    raise BankFileError(f"an XML document ({what}) that is neither camt.053 nor camt.054")


class _HeadReached(Exception):
    """The message element has started: the prolog, where a DTD would be, is behind us."""


class _HeadTarget:
    """Parser target that keeps the first two element tags (root, message), then stops the parse."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    def start(self, tag: str, _attrib: dict) -> None:
        self.tags.append(tag)
        if len(self.tags) == 2:
            raise _HeadReached

    def end(self, _tag: str) -> None:
        pass

    def data(self, _data: str) -> None:
        pass

    def close(self) -> None:
        return None


def _xml_head(data: bytes) -> tuple[str, str | None]:
    """(root tag, message tag), read by defusedxml with DTDs, entities and external references
    forbidden. Raises BankFileError for a DTD or for XML that is not well-formed up to there."""
    target = _HeadTarget()
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        for start in range(0, len(data), HEAD_CHUNK):
            parser.feed(data[start:start + HEAD_CHUNK])
        parser.close()
    except _HeadReached:
        pass
    except DefusedXmlException:
        raise BankFileError("XML with a DTD or entity declarations is refused (bank files have none)") from None
    except ParseError as exc:
        raise BankFileError(f"not well-formed XML: {exc}") from None
    if not target.tags:
        raise BankFileError("an XML file without elements")
    return target.tags[0], target.tags[1] if len(target.tags) > 1 else None


# --- camt.053 / camt.054 ------------------------------------------------------------------


def _camt_head(data: bytes, file_format: str) -> tuple[_Names, str]:
    """The document's names and its statement (or notification) element, once its head shows it
    is a `file_format` document; BankFileError if not."""
    root, message = _xml_head(data)
    message_element, container = CAMT_ELEMENTS[file_format]
    if _local(root) != "Document" or message is None or _local(message) != message_element:
        found = _local(message) if message else _local(root)
        raise BankFileError(f"not a {file_format} document: {message_element} expected, {found} found")
    return _Names(_namespace(root)), container


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic collector off for a while. Reading and importing a large file makes millions of
    short-lived objects without cycles (elements, each entry's credit, rows to write), all freed
    by reference counting; the collector's passes over a heap that size cost a third of the parse
    time and a fifth of the import's."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Names(dict):
    """Local name -> the tag ElementTree gives it in this document ('{namespace}Amt', or 'Amt'
    without a namespace). Names are looked up in the document's own namespace, whichever version
    it is: a camt document has its elements in one namespace, and a qualified tag lets
    `Element.find` take its fast path (a plain loop over the children, in C)."""

    def __init__(self, namespace: str):
        super().__init__()
        self.prefix = f"{{{namespace}}}" if namespace else ""

    def __missing__(self, name: str) -> str:
        self[name] = tag = self.prefix + name
        return tag


def _read_camt(data: bytes, q: _Names, container: str, stream: CreditStream) -> Iterator[Credit]:
    """Stream the document, each Ntry read (and cleared) as it ends.

    A statement's Id and Acct come before its entries, in every version's schema: the first Id
    and the first Acct to end after the group header (or the previous statement) are the
    statement's own, so its entries' credits are complete when they end. At the statement's end
    both are checked against its children; a file that fools the order is refused there."""
    entry_tag, container_tag, account_tag, id_tag, header_tag = (
        q["Ntry"], q[container], q["Acct"], q["Id"], q["GrpHdr"])
    account, statement_id, position = "", None, 0
    with paused_gc():
        try:
            # S314: the head was read by defusedxml (no DTD); past the first element expat refuses one.
            for _event, elem in iterparse(io.BytesIO(data), events=("end",)):  # noqa: S314
                tag = elem.tag
                if tag == entry_tag:
                    if not account:
                        raise BankFileError(f"an entry before its {container}'s account "
                                            "(Acct/Id/IBAN or Acct/Id/Othr/Id)")
                    position += 1
                    yield from _entry_credits(elem, q, position, account, statement_id or "", stream)
                    elem.clear()
                elif tag == id_tag and statement_id is None:
                    statement_id = (elem.text or "").strip()
                elif tag == account_tag and not account:
                    account = _account(elem, q)
                elif tag == container_tag:
                    _check_statement(elem, q, account, statement_id or "")
                    account, statement_id, position = "", None, 0
                    elem.clear()
                elif tag == header_tag:
                    statement_id = None  # an Id inside the group header was not the statement's
        except ParseError as exc:
            raise BankFileError(f"not well-formed XML: {exc}") from None


def _account(acct: Element, q: _Names) -> str:
    account_id = acct.find(q["Id"])
    return compact_account(_text(account_id, q, "IBAN") or _text(account_id, q, "Othr", "Id"))


def _check_statement(container: Element, q: _Names, account: str, statement_id: str) -> None:
    """The statement's own Acct and Id are the ones its entries were read with."""
    acct = container.find(q["Acct"])
    if (_account(acct, q) if acct is not None else "") != account or _text(container, q, "Id") != statement_id:
        raise BankFileError("a statement whose Id and Acct do not come first, before its entries")


def _find(elem: Element | None, q: _Names, *path: str) -> Element | None:
    """The first descendant along `path` of local names, or None."""
    for name in path:
        if elem is None:
            return None
        elem = elem.find(q[name])
    return elem


def _text(elem: Element | None, q: _Names, *path: str) -> str:
    """The stripped text at `path` below `elem` ("" when there is none)."""
    found = _find(elem, q, *path) if path else elem
    return (found.text or "").strip() if found is not None else ""


def _entry_credits(ntry: Element, q: _Names, position: int, account: str, statement_id: str,
                   stream: CreditStream) -> list[Credit]:
    """The entry's credits (several for a batch booking); what is not one is counted in `stream.ignored`.

    Written with `find`/`findtext` on qualified tags, which loop over the children in C: this
    runs once per entry, 100,000 times for a large statement."""
    text = ntry.findtext
    if (text(q["CdtDbtInd"]) or "").strip() != "CRDT" or (text(q["RvslInd"]) or "").strip().lower() in ("true", "1"):
        stream.ignored += 1
        return []
    if not _is_booked(ntry.find(q["Sts"]), q):
        stream.ignored += 1
        return []
    booking = ntry.find(q["BookgDt"])
    booked_on, booked_at = _booking(booking if booking is not None else ntry.find(q["ValDt"]), q)
    amount, currency = _amount(ntry.find(q["Amt"]))
    entry_ref = (text(q["AcctSvcrRef"]) or "").strip() or None
    ntry_ref = (text(q["NtryRef"]) or "").strip() or None
    facts = [_transaction(tx, q) for details in ntry.findall(q["NtryDtls"]) for tx in details.findall(q["TxDtls"])]
    found = [f for f in facts if f is not None]
    if facts and not found:
        stream.ignored += 1  # every transaction is a debit
        return []
    if len(found) > 1 and any(f[0] is None for f in found):
        found = []  # a batch without its transactions' amounts cannot be split: one credit, for an agent
    if not found:
        found = [(None, None, None, (text(q["AddtlNtryInf"]) or "").strip() or None, None)]
    batch, credits = len(found) > 1, []
    for index, (tx_amount, tx_ref, reference, remittance, payer) in enumerate(found, start=1):
        value, value_currency = tx_amount if tx_amount is not None else (amount, currency)
        if value <= 0:
            stream.ignored += 1
            continue
        ids = (tx_ref, entry_ref, ntry_ref, statement_id, position, index, batch)
        content = (booked_on, value, value_currency, reference, remittance, payer)
        credits.append(Credit(account, _bank_ref(account, ids, content), booked_on, booked_at, value,
                              value_currency, reference, remittance, payer))
    return credits


def _is_booked(status: Element | None, q: _Names) -> bool:
    """Sts BOOK (versions 02-05) or Sts/Cd BOOK (06 and later)."""
    if status is None:
        return False
    code = status.findtext(q["Cd"])
    return (code if code is not None else status.text or "").strip() == "BOOK"


def _transaction(tx: Element, q: _Names) -> tuple | None:
    """(amount or None, bank ref, structured reference, remittance text, payer name) of one TxDtls;
    None for a debit inside a credit entry."""
    if (tx.findtext(q["CdtDbtInd"]) or "").strip() == "DBIT":
        return None
    amount_elem = tx.find(q["Amt"])  # version 03 and later
    if amount_elem is None:
        amount_elem = _find(tx, q, "AmtDtls", "TxAmt", "Amt")  # version 02
    amount = _amount(amount_elem) if amount_elem is not None else None
    refs = tx.find(q["Refs"])
    tx_ref = (refs.findtext(q["AcctSvcrRef"]) or "").strip() or None if refs is not None else None
    payer = None
    parties = tx.find(q["RltdPties"])
    debtor = parties.find(q["Dbtr"]) if parties is not None else None
    if debtor is not None:
        name = debtor.findtext(q["Nm"])
        if name is None:  # version 08: Dbtr/Pty/Nm
            party = debtor.find(q["Pty"])
            name = party.findtext(q["Nm"]) if party is not None else None
        payer = (name or "").strip() or None
    reference, remittance = _remittance(tx.find(q["RmtInf"]), q)
    return amount, tx_ref, reference, remittance, payer


def _remittance(info: Element | None, q: _Names) -> tuple[str | None, str | None]:
    """(the first Strd/CdtrRefInf/Ref, every Ustrd joined by spaces)."""
    if info is None:
        return None, None
    reference = None
    for structured in info.findall(q["Strd"]):
        reference = _text(structured, q, "CdtrRefInf", "Ref") or None
        if reference:
            break
    lines = [line for line in ((u.text or "").strip() for u in info.findall(q["Ustrd"])) if line]
    return reference, " ".join(lines) or None


def _amount(elem: Element | None) -> tuple[int, str]:
    if elem is None:
        raise BankFileError("an entry without an amount")
    currency = (elem.get("Ccy") or "").strip().upper()
    return minor_units((elem.text or "").strip(), currency), currency


def minor_units(text: str, currency: str) -> int:
    """'1234.50' NOK -> 123450. Exact: integer arithmetic on the digits (or a Decimal for other
    spellings), scaled by the currency's exponent, never a float; more decimals than the currency
    has is an error, not a rounding."""
    if not is_currency(currency):
        raise BankFileError(f"unknown currency {currency!r}")
    digits = exponent(currency)
    whole, dot, fraction = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not dot or (fraction.isascii() and fraction.isdigit()
                                                            and len(fraction) <= digits)):
        return int(whole) * 10 ** digits + int(fraction.ljust(digits, "0") or 0)
    if not DECIMAL.fullmatch(text):  # xs:decimal, as ISO 20022 amounts are: no exponent, no sign but +
        raise BankFileError(f"not an amount: {text!r}")
    minor = Decimal(text).scaleb(digits)
    if minor != minor.to_integral_value():
        raise BankFileError(f"{text} has more decimals than {currency} has")
    return int(minor)


def _booking(elem: Element | None, q: _Names) -> tuple[date, datetime]:
    """BookgDt/Dt (00:00 UTC that day) or BookgDt/DtTm (a time without an offset is taken as UTC)."""
    day = _text(elem, q, "Dt")
    if day:
        return _day(day)
    moment = _text(elem, q, "DtTm")
    if moment:
        return _moment(moment)
    raise BankFileError("a booked entry without a booking date")


@lru_cache(maxsize=1024)
def _day(text: str) -> tuple[date, datetime]:
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        raise BankFileError(f"not a date: {text!r}") from None
    return day, datetime.combine(day, time(0), UTC)


@lru_cache(maxsize=1024)
def _moment(text: str) -> tuple[date, datetime]:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BankFileError(f"not a date and time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.date(), moment.astimezone(UTC)


def compact_account(value: str) -> str:
    """'NO93 8601 1117 947' or '1503.20.80119' -> 'NO9386011117947', '15032080119'."""
    return "".join(ch for ch in value if ch.isalnum()).upper()


def _bank_ref(account: str, ids: tuple, content: tuple) -> str:
    """See the module's docstring for the order and why. `ids`: the transaction's, the entry's,
    the entry's NtryRef, the statement's id, the entry's position, the transaction's, batch or not."""
    tx_ref, entry_ref, ntry_ref, statement_id, position, index, batch = ids
    suffix = f"/{index}" if batch else ""
    if tx_ref:
        ref = tx_ref
    elif entry_ref:
        ref = entry_ref + suffix
    elif ntry_ref:
        ref = f"{statement_id}/{ntry_ref}{suffix}"
    else:
        booked_on, amount, currency, reference, remittance, payer = content
        hashed = "|".join((
            account, statement_id, str(position), str(index), booked_on.isoformat(), str(amount), currency,
            reference or "", remittance or "", payer or "",
        ))
        return "h:" + hashlib.sha256(hashed.encode()).hexdigest()[:32]
    return ref if len(ref) <= MAX_BANK_REF else "h:" + hashlib.sha256(ref.encode()).hexdigest()[:32]


# --- OCR giro ------------------------------------------------------------------------------

OCR_REVERSALS = (netsgiro.TransactionType.REVERSING_WITH_KID, netsgiro.TransactionType.REVERSING_WITH_TEXT)


def parse_ocr(data: bytes) -> ParsedFile:
    """Every payment of a Nets OCR giro file (read by netsgiro), reversals left out. The file's
    lines are ISO 8859-1 (Latin-1) text of 80 characters."""
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(OCR_START):
        raise BankFileError("not an OCR giro file: it does not start with a transmission start record (NY000010)")
    try:
        records: list[Any] = parse_records(data.decode("iso-8859-1"))
        end = records[-1] if records else None
        if not isinstance(end, TransmissionEnd) or end.num_records != len(records):
            raise BankFileError("an incomplete OCR giro file: its end record does not count the records it has")
        transmission = netsgiro.Transmission.from_records(records)
    except (ValueError, TypeError, KeyError, AssertionError) as exc:
        if isinstance(exc, BankFileError):
            raise
        raise BankFileError(f"not a valid OCR giro file: {exc or type(exc).__name__}") from None
    parsed = ParsedFile(OCR)
    for assignment in transmission.assignments:
        if assignment.service_code != netsgiro.ServiceCode.OCR_GIRO:
            continue  # AvtaleGiro agreements and payment requests: not money received
        for tx in assignment.transactions:
            assert isinstance(tx, netsgiro.Transaction)  # an OCR giro assignment's are
            credit = _ocr_credit(assignment.account, tx)
            if credit is None:
                parsed.ignored += 1
            else:
                parsed.credits.append(credit)
    return parsed


def _ocr_credit(account: str, tx: netsgiro.Transaction) -> Credit | None:
    if tx.type in OCR_REVERSALS or tx.sign == "-" or tx.amount_in_cents <= 0:
        return None
    booked_on, booked_at = _day(tx.date.isoformat())
    ids = (tx.centre_id, tx.day_code, tx.partial_settlement_number, tx.partial_settlement_serial_number)
    if all(part is not None for part in ids):
        bank_ref = f"{tx.date:%Y%m%d}-{tx.centre_id}-{tx.day_code:02d}-{tx.partial_settlement_number}-" \
                   f"{tx.partial_settlement_serial_number}"
    else:
        content = f"{account}|{tx.date}|{tx.number}|{tx.amount_in_cents}|{tx.kid or ''}"
        bank_ref = "h:" + hashlib.sha256(content.encode()).hexdigest()[:32]
    return Credit(
        account=compact_account(account), bank_ref=bank_ref, booked_on=booked_on, booked_at=booked_at,
        amount=tx.amount_in_cents, currency="NOK", reference=(tx.kid or "").strip() or None,
        remittance=(tx.text or "").strip() or None,
    )
