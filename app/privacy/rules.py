"""The law the retention follows, as data with its sources (docs/privacy.md says the same in words).

Two clocks run for a closed invoice:

- the creditor's retention period (`PrivacySettings.retention_months`, default `DEFAULT_RETENTION_MONTHS`
  of the creditor's country): after it, everything that only served the conversation about the bill
  (contact data, messages, notes, attachments, links, letters' addresses, provider payloads) is
  minimised; the invoice, its lines, credit notes and payments are kept, with the buyer's name and
  address where bookkeeping law wants them on the invoice;
- bookkeeping law's period (`Rule.years`, counted from `Rule.counted_from`): after it, nothing
  requires the buyer's name or address any longer and the customer can be anonymised.

A country without a rule here keeps what the strictest rule keeps, for the longest period (`ELSEWHERE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Rule:
    country: str
    years: int  # how long bookkeeping law keeps the invoice copy
    # "year_end": from the end of the (calendar) year the invoice was issued in; "closed": from its last transaction
    counted_from: str
    buyer_on_invoice: bool  # the buyer's name and address are part of the kept invoice
    # the rest of the personal data, after the invoice was closed, unless the creditor sets another period
    default_retention_months: int
    sources: tuple[str, ...]


RULES: dict[str, Rule] = {
    "NO": Rule(
        "NO", 5, "year_end", True, 36,
        ("bokføringsloven § 13 annet ledd (primærdokumentasjon: fem år etter regnskapsårets slutt; ti år før 2014)",
         "bokføringsforskriften § 5-1-1 nr. 3 (salgsdokumentet viser kjøpers navn og adresse "
         "eller organisasjonsnummer)",
         "foreldelsesloven § 2 (alminnelig foreldelsesfrist tre år): the default retention of the rest")),
    "DE": Rule(
        "DE", 8, "year_end", True, 36,
        ("HGB § 257 Abs. 1 Nr. 4, Abs. 4 und 5; AO § 147 Abs. 1 Nr. 4, Abs. 3 und 4: Buchungsbelege acht Jahre "
         "ab Schluss des Kalenderjahres (bis 2024 zehn Jahre; Viertes Bürokratieentlastungsgesetz, ab 1.1.2025)",
         "UStG § 14b Abs. 1 (Rechnungen acht Jahre) und § 14 Abs. 4 Nr. 1 (Name und Anschrift des Leistungsempfängers)",
         "BGB §§ 195, 199 (regelmäßige Verjährung drei Jahre ab Jahresende): the default retention of the rest")),
    "IE": Rule(
        "IE", 6, "closed", True, 72,
        ("Value-Added Tax Consolidation Act 2010, s. 84(3): invoices and copies kept 6 years "
         "from the latest transaction",
         "European Union (Value-Added Tax) Regulations 2010, reg. 20: the customer's name and address on a VAT invoice",
         "Statute of Limitations 1957, s. 11(1)(a) (simple contract, six years): the default retention of the rest")),
}

ELSEWHERE = Rule(
    "", 10, "year_end", True, 36,
    ("No rule for the creditor's country yet: the longest period and the fullest invoice of the rules above, "
     "until a rule with its sources is added here",))

MIN_RETENTION_MONTHS = 1
MAX_RETENTION_MONTHS = 120


def rule_for(country: str | None) -> Rule:
    return RULES.get((country or "").upper(), ELSEWHERE)


def keep_until(rule: Rule, issue_date: date, closed_on: date) -> date:
    """The last day bookkeeping law keeps the invoice (and, by `buyer_on_invoice`, the buyer's name and address)."""
    if rule.counted_from == "year_end":
        return date(issue_date.year + rule.years, 12, 31)
    return add_months(closed_on, rule.years * 12)


def add_months(day: date, months: int) -> date:
    """`day` plus `months` calendar months (the 31st becomes the month's last day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")
