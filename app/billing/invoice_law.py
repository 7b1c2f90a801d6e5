"""What an invoice must say where its creditor is, as data: the seller's identity (Norway, Germany,
elsewhere) and the VAT breakdown per rate. Sources and the reasoning: docs/invoice-law.md.

- Norway: the seller's organisation number (bokføringsforskriften § 5-1-1 nr. 2), followed by the
  letters "MVA" when the seller is in Merverdiavgiftsregisteret (ibid.; the creditor's VAT id is set),
  and the word "Foretaksregisteret" when the seller is registered there (foretaksregisterloven § 10-2;
  registration is compulsory for the legal forms of § 2-1, recognised by the legal name's suffix).
  Both words are statutory and printed in Norwegian whatever the page's language.
- Germany: the Steuernummer or the USt-IdNr. (UStG § 14(4) nr. 2), the VAT id where both are known;
  the commercial register number (HGB § 37a, GmbHG § 35a) as the org number.
- Elsewhere: the org number and the VAT id as the creditor gives them.

Rates: each rate's net and VAT are the sums of its lines' (VAT is computed per line on the rounded net,
docs/decisions.md "Money and invoices"), less what credit notes took off at that rate; so the rates add
up to the invoice's subtotal and VAT exactly, in minor units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from app.billing.corrections import credit_notes
from app.billing.models import CreditNote, Invoice

#: Norwegian legal forms that must be in Foretaksregisteret (foretaksregisterloven § 2-1), as the
#: legal name ends with them.
NO_REGISTERED_FORMS = ("AS", "ASA", "ANS", "DA", "SA", "KS", "BA", "NUF", "SE", "SF")


@dataclass(frozen=True)
class RateTotal:
    """One VAT rate of a bill: what is taxed at it (net), the VAT, and the two together."""

    rate: int  # basis points: 2500 = 25 %
    net: int
    vat: int

    @property
    def gross(self) -> int:
        return self.net + self.vat


def vat_breakdown(lines: Iterable[Any], credit_lines: Iterable[Any] = ()) -> list[RateTotal]:
    """Net and VAT per rate (highest rate first) of invoice lines less credit note lines (anything with
    `vat_rate`, `net` and `vat`). A rate whose lines were credited in full is left out."""
    sums: dict[int, list[int]] = {}
    for sign, items in ((1, lines), (-1, credit_lines)):
        for item in items:
            entry = sums.setdefault(int(item.vat_rate), [0, 0])
            entry[0] += sign * int(item.net)
            entry[1] += sign * int(item.vat)
    return [RateTotal(rate, net, vat) for rate, (net, vat) in sorted(sums.items(), reverse=True)
            if net or vat]


def rates_of(invoice: Invoice, notes: list[CreditNote] | None = None) -> list[RateTotal]:
    """The invoice's VAT per rate, less its credit notes' (`notes`: when the caller has them)."""
    if notes is None:
        notes = credit_notes(invoice.id) if invoice.credited else []
    return vat_breakdown(invoice.lines, [line for note in notes for line in note.lines])


def _field(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)


def norwegian_org_number(digits: str) -> str:
    """'923609016' as printed: '923 609 016'."""
    return " ".join(digits[i:i + 3] for i in range(0, len(digits), 3)) if digits.isdigit() else digits


def in_foretaksregisteret(legal_name: str | None) -> bool:
    """Whether the legal name's form is one Foretaksregisteret must hold (AS, ASA, ANS, ...)."""
    words = (legal_name or "").replace(".", "").split()
    return bool(words) and words[-1].upper() in NO_REGISTERED_FORMS


def seller_identity(creditor: Any) -> list[str]:
    """The seller's identity as its country's law wants it on invoices, letters and pages, in the current
    language (labels) and the statutory words: one string per item. `creditor`: a Creditor or a letter's
    snapshot of one (a mapping with the same names)."""
    country = (_field(creditor, "country") or "").upper()
    org, vat_id, tax_number = (_field(creditor, name) for name in ("org_number", "vat_id", "tax_number"))
    org_label, vat_label, tax_label = _("Org. no."), _("VAT ID"), _("Tax number")
    items: list[str] = []
    if country == "NO":
        if org:
            items.append(f"{org_label} {norwegian_org_number(org)}" + (" MVA" if vat_id else ""))
            if in_foretaksregisteret(_field(creditor, "legal_name") or _field(creditor, "name")):
                items.append("Foretaksregisteret")
        elif vat_id:
            items.append(f"{vat_label} {vat_id}")
        return items
    if org:
        items.append(f"{org_label} {org}")
    if vat_id:
        items.append(f"{vat_label} {vat_id}")
    elif tax_number:
        items.append(f"{tax_label} {tax_number}")
    return items

