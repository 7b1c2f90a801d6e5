"""Bank-transfer details for a bill: the account and structured reference formatted the local
way, and the EPC QR code (EPC069-12, version 002) for SEPA credit transfers in EUR."""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from stdnum import iban as stdnum_iban
from stdnum.no import kontonr

from app.billing.models import Invoice
from app.creditors.models import Creditor
from app.creditors.references import format_reference
from app.money import to_decimal

EPC_MAX_CENTS = 99_999_999_999


@dataclass(frozen=True)
class TransferDetails:
    account_label: str  # "account_no" or "iban": the template picks the translated label
    account: str  # formatted for reading
    account_compact: str  # for copying
    bic: str | None
    reference: str
    reference_compact: str
    reference_kind: str  # "kid" or "rf"
    amount: int
    currency: str
    epc_qr: bool


def transfer_details(creditor: Creditor, invoice: Invoice, amount: int | None = None) -> TransferDetails | None:
    """What the customer needs to pay by bank transfer today, or None when the creditor has no account.
    `amount`: what is due now when it is not the balance (an instalment, the undisputed part).
    None for a test bill: real money never goes to pay one (docs/api.md, "Test mode")."""
    if not invoice.livemode:
        return None
    if creditor.bank_account_no and (invoice.currency == "NOK" or not creditor.iban):
        label, account, compact = "account_no", kontonr.format(creditor.bank_account_no), creditor.bank_account_no
    elif creditor.iban:
        label, account, compact = "iban", stdnum_iban.format(creditor.iban), creditor.iban
    else:
        return None
    scheme = creditor.reference_scheme
    return TransferDetails(
        account_label=label,
        account=account,
        account_compact=compact,
        bic=creditor.bic if label == "iban" else None,
        reference=format_reference(scheme, invoice.payment_reference),
        reference_compact=invoice.payment_reference,
        reference_kind="rf" if scheme == "rf" else "kid",
        amount=max(invoice.balance if amount is None else amount, 0),
        currency=invoice.currency,
        epc_qr=can_make_epc_qr(creditor, invoice),
    )


def can_make_epc_qr(creditor: Creditor, invoice: Invoice) -> bool:
    return (invoice.livemode and bool(creditor.iban) and invoice.currency == "EUR"
            and 0 < invoice.balance <= EPC_MAX_CENTS)


def epc_payload(creditor: Creditor, invoice: Invoice, amount: int | None = None) -> str:
    """The EPC QR payload: structured RF reference when the scheme is RF, else as remittance text.
    `amount` as in `transfer_details`."""
    if not can_make_epc_qr(creditor, invoice):
        raise ValueError("no EPC QR code for this invoice")
    name = (creditor.legal_name or creditor.name)[:70]
    structured = invoice.payment_reference if creditor.reference_scheme == "rf" else ""
    text = "" if structured else f"{invoice.number} {invoice.payment_reference}"[:140]
    value = f"EUR{to_decimal(invoice.balance if amount is None else amount, 'EUR'):.2f}"
    lines = ["BCD", "002", "1", "SCT", creditor.bic or "", name, creditor.iban or "", value, "", structured, text]
    return "\n".join(lines)


def epc_qr_svg(payload: str, title: str) -> str:
    """An SVG of the QR code (error correction M, as EPC069-12 requires)."""
    return qr_svg(payload, title)


def qr_svg(payload: str, title: str) -> str:
    """An SVG of a QR code of `payload` (error correction M)."""
    qr = segno.make(payload, error="m", micro=False, boost_error=False, encoding="utf-8")
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=4, border=4, title=title, xmldecl=False, svgns=True, nl=False)
    return out.getvalue().decode()
