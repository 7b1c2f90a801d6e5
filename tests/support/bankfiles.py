"""Bank files for tests and the benchmark: camt.053 and camt.054 in the layouts of versions 02
to 08, and Nets OCR giro files written by netsgiro.

`camt053(account, [credit(...), ...])` gives the bytes of a statement; `Entry` and `Tx` describe
anything else (debits, reversals, pending entries, batch bookings, missing references)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape

import netsgiro

from app.money import to_decimal

BOOKED = date(2026, 11, 20)


@dataclass
class Tx:
    """One TxDtls."""

    amount: int | None = None  # minor units; None: no amount in the TxDtls (the entry's applies)
    reference: str | None = None  # RmtInf/Strd/CdtrRefInf/Ref
    ustrd: str | None = None  # RmtInf/Ustrd
    payer: str | None = None  # RltdPties/Dbtr (…/Pty from version 08)/Nm
    ref: str | None = None  # Refs/AcctSvcrRef
    debit: bool = False  # CdtDbtInd DBIT inside the entry


@dataclass
class Entry:
    """One Ntry."""

    txs: list[Tx] = field(default_factory=list)
    currency: str = "NOK"
    amount: int | None = None  # default: the sum of the transactions' amounts
    credit: bool = True
    status: str = "BOOK"
    reversal: bool = False
    booked: date = BOOKED
    booked_at: str | None = None  # BookgDt/DtTm instead of BookgDt/Dt
    acct_svcr_ref: str | None = None
    ntry_ref: str | None = None
    info: str | None = None  # AddtlNtryInf


def credit(amount: int, reference: str | None = None, *, payer: str | None = None, ustrd: str | None = None,
           ref: str | None = None, currency: str = "NOK", **entry) -> Entry:
    """An entry of one booked credit transfer; `ref` is the transaction's AcctSvcrRef."""
    return Entry([Tx(amount, reference=reference, ustrd=ustrd, payer=payer, ref=ref)], currency=currency, **entry)


def _amount(minor: int, currency: str) -> str:
    return f"{to_decimal(minor, currency):f}"


def _el(name: str, value: str | None) -> str:
    return f"<{name}>{escape(value)}</{name}>" if value is not None else ""


def _tx_xml(tx: Tx, currency: str, version: int) -> str:
    parts = ["<TxDtls>"]
    if tx.ref:
        parts.append(f"<Refs><AcctSvcrRef>{escape(tx.ref)}</AcctSvcrRef><EndToEndId>NOTPROVIDED</EndToEndId></Refs>")
    if tx.amount is not None:
        amount = f'<Amt Ccy="{currency}">{_amount(tx.amount, currency)}</Amt>'
        parts.append(amount if version >= 3 else f"<AmtDtls><TxAmt>{amount}</TxAmt></AmtDtls>")
    if version >= 3 and (tx.debit or tx.amount is not None):
        parts.append(f"<CdtDbtInd>{'DBIT' if tx.debit else 'CRDT'}</CdtDbtInd>")
    if tx.payer:
        name = f"<Nm>{escape(tx.payer)}</Nm>"
        parts.append(f"<RltdPties><Dbtr>{f'<Pty>{name}</Pty>' if version >= 8 else name}</Dbtr></RltdPties>")
    if tx.reference or tx.ustrd:
        parts.append("<RmtInf>")
        if tx.ustrd:
            parts.append(_el("Ustrd", tx.ustrd))
        if tx.reference:
            kind = "<Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
            parts.append(f"<Strd><CdtrRefInf>{kind}<Ref>{escape(tx.reference)}</Ref></CdtrRefInf></Strd>")
        parts.append("</RmtInf>")
    parts.append("</TxDtls>")
    return "".join(parts)


def entry_xml(entry: Entry, version: int = 8) -> str:
    amount = entry.amount if entry.amount is not None else sum(tx.amount or 0 for tx in entry.txs)
    status = f"<Sts><Cd>{entry.status}</Cd></Sts>" if version >= 6 else f"<Sts>{entry.status}</Sts>"
    booked = f"<DtTm>{entry.booked_at}</DtTm>" if entry.booked_at else f"<Dt>{entry.booked.isoformat()}</Dt>"
    parts = [
        "<Ntry>", _el("NtryRef", entry.ntry_ref),
        f'<Amt Ccy="{entry.currency}">{_amount(amount, entry.currency)}</Amt>',
        f"<CdtDbtInd>{'CRDT' if entry.credit else 'DBIT'}</CdtDbtInd>",
        "<RvslInd>true</RvslInd>" if entry.reversal else "",
        status, f"<BookgDt>{booked}</BookgDt>", f"<ValDt><Dt>{entry.booked.isoformat()}</Dt></ValDt>",
        _el("AcctSvcrRef", entry.acct_svcr_ref),
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>",
    ]
    if entry.txs:
        parts.append("<NtryDtls>")
        if len(entry.txs) > 1:
            parts.append(f"<Btch><NbOfTxs>{len(entry.txs)}</NbOfTxs></Btch>")
        parts.extend(_tx_xml(tx, entry.currency, version) for tx in entry.txs)
        parts.append("</NtryDtls>")
    parts.append(_el("AddtlNtryInf", entry.info))
    parts.append("</Ntry>\n")
    return "".join(parts)


def _account_xml(account: str, currency: str) -> str:
    if account[:2].isalpha():
        ident = f"<IBAN>{account}</IBAN>"
    else:
        ident = f"<Othr><Id>{account}</Id><SchmeNm><Cd>BBAN</Cd></SchmeNm></Othr>"
    return f"<Acct><Id>{ident}</Id><Ccy>{currency}</Ccy></Acct>"


def camt(kind: str, account: str, entries: list[Entry], *, version: int = 8, statement_id: str = "STMT-1",
         prefix: str | None = None, namespace: bool = True, currency: str = "NOK") -> bytes:
    """A camt.053 (kind "053") or camt.054 ("054") document for one account. `prefix` writes the
    elements with a namespace prefix (`<ns2:Document …>`); `namespace=False` writes none."""
    message, container = ("BkToCstmrStmt", "Stmt") if kind == "053" else ("BkToCstmrDbtCdtNtfctn", "Ntfctn")
    body = "".join([
        f"<{message}><GrpHdr><MsgId>MSG-{statement_id}</MsgId><CreDtTm>2026-11-20T18:00:00+01:00</CreDtTm></GrpHdr>",
        f"<{container}><Id>{escape(statement_id)}</Id><CreDtTm>2026-11-20T18:00:00+01:00</CreDtTm>",
        _account_xml(account, currency), "\n",
        *(entry_xml(entry, version) for entry in entries),
        f"</{container}></{message}>",
    ])
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.{version:02d}"
    if prefix:
        body = _prefixed(body, prefix)
        document = f'<{prefix}:Document xmlns:{prefix}="{ns}">{body}</{prefix}:Document>'
    elif namespace:
        document = f'<Document xmlns="{ns}">{body}</Document>'
    else:
        document = f"<Document>{body}</Document>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + document + "\n").encode()


def _prefixed(xml: str, prefix: str) -> str:
    """Every element name given the prefix (the generator writes no other '<')."""
    return xml.replace("</", "\x00").replace("<", f"<{prefix}:").replace("\x00", f"</{prefix}:")


def camt053(account: str, entries: list[Entry], **options) -> bytes:
    return camt("053", account, entries, **options)


def camt054(account: str, entries: list[Entry], **options) -> bytes:
    return camt("054", account, entries, **options)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt><Id>&lol4;</Id>
</Stmt></BkToCstmrStmt></Document>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt><Id>&xxe;</Id>
</Stmt></BkToCstmrStmt></Document>
"""


# --- OCR giro --------------------------------------------------------------------------------


@dataclass
class OcrPayment:
    amount: int  # øre
    kid: str
    serial: int  # the partial settlement serial number: what makes the bank reference unique
    day: date = BOOKED
    reversal: bool = False
    text: str | None = None


def ocr_giro(account: str, payments: list[OcrPayment], *, assignment: str = "4000086") -> bytes:
    """An OCR giro transmission with one assignment to `account` (11 digits), written by netsgiro."""
    transmission = netsgiro.Transmission(
        number="1000081", data_transmitter="00008080", data_recipient="55555555", date=BOOKED,
    )
    target = transmission.add_assignment(
        service_code=netsgiro.ServiceCode.OCR_GIRO, assignment_type=netsgiro.AssignmentType.TRANSACTIONS,
        agreement_id="000000000", number=assignment, account=account, date=BOOKED,
    )
    for number, payment in enumerate(payments, start=1):
        if payment.reversal:
            kind = netsgiro.TransactionType.REVERSING_WITH_KID
        elif payment.text:
            kind = netsgiro.TransactionType.PURCHASE_WITH_TEXT
        else:
            kind = netsgiro.TransactionType.FROM_GIRO_DEBITED_ACCOUNT
        target.transactions.append(netsgiro.Transaction(
            service_code=netsgiro.ServiceCode.OCR_GIRO, type=kind, number=number, date=payment.day,
            amount=Decimal(payment.amount) / 100, kid=payment.kid, reference="000000000", text=payment.text,
            centre_id="13", day_code=payment.day.day, partial_settlement_number=1,
            partial_settlement_serial_number=f"{payment.serial:05d}", sign="-" if payment.reversal else "0",
            form_number="9636827194", bank_date=payment.day, debit_account="99990512341", filler="0000000",
        ))
    return (transmission.to_ocr() + "\n").encode("iso-8859-1")
