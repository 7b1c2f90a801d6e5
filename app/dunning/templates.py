"""Step texts: templates per creditor, step and language with named variables, filled safely.

A text is the creditor's own words with variables in curly brackets: "Hei {customer}, faktura
{invoice} på {amount} forfalt {due_date}: {link}". Only the names in `VARIABLES` are allowed (a
plan naming another is refused when it is saved, with the field), and filling replaces exactly
those: a text is never run as a format string, so braces, percent signs and attribute lookups in a
creditor's text do nothing. Values are formatted in the text's language (money and dates by Babel).

`preview()` fills a step's text for a sample bill or a real one, before the plan is saved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from flask_babel import force_locale
from flask_babel import gettext as _

from app.templating import date_filter, money

PLACEHOLDER = re.compile(r"\{(\w+)\}")
BRACED = re.compile(r"\{([^{}]*)\}")  # anything in braces: each must be a known variable

#: The variables a step's text may use.
VARIABLES: tuple[str, ...] = (
    "customer",  # the customer's name
    "invoice",  # the invoice number (a consolidated message: the oldest bill's)
    "amount",  # what is owed now, with the step's fee
    "due_date",  # the invoice's due date
    "deadline",  # the payment deadline this step gives
    "fee",  # the fee this step adds ("" when none)
    "link",  # the signed link to the bill page, issued when the message goes out
    "creditor",  # the creditor's name
    "reference",  # the payment reference (KID or RF)
    "consequences",  # what follows an unpaid collection warning, in the jurisdiction's words
    "support",  # the creditor's support phone or e-mail
)

#: The parts of a step's text per language, and which channel needs which.
PARTS = ("subject", "body", "sms")
NEEDS = {"email": ("subject", "body"), "letter": ("subject", "body"), "sms": ("sms",)}
MAX_LENGTH = {"subject": 200, "body": 5000, "sms": 480}


def unknown_variables(text: str) -> list[str]:
    """The names in braces that are not variables (so "{ amount }" and "{0}" are unknown too)."""
    return [name for name in BRACED.findall(text or "") if name not in VARIABLES]


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each known variable replaced by its value; anything else stays as written."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text or "")


def consequences(jurisdiction: str) -> str:
    """What follows an unpaid collection warning, in the current locale (the {consequences} variable)."""
    if jurisdiction == "NO":
        return _("If the amount is not paid within the deadline, the claim will be handed to debt collection. "
                 "Debt collection adds collection costs (inkassosalær) that you will have to pay, and may lead "
                 "to legal proceedings and a payment remark.")
    if jurisdiction == "DE":
        return _("If the amount is not paid within the deadline, we will hand the claim to a debt collection "
                 "agency. This adds costs that you will have to pay, as well as default interest.")
    return _("If the amount is not paid within the deadline, the claim may be handed to debt collection, "
             "which adds costs.")


@dataclass(frozen=True)
class Facts:
    """What a text is filled from, in minor units and dates; formatted per language by `values`."""

    customer: str
    invoice: str
    amount: int
    currency: str
    due_date: date
    deadline: date | None
    fee: int
    link: str
    creditor: str
    reference: str
    jurisdiction: str
    support: str = ""


def values(facts: Facts, locale: str) -> dict[str, str]:
    """Every variable's value in `locale`."""
    with force_locale(locale):
        return {
            "customer": facts.customer, "invoice": facts.invoice,
            "amount": money(max(facts.amount, 0), facts.currency), "due_date": date_filter(facts.due_date),
            "deadline": date_filter(facts.deadline) if facts.deadline else "",
            "fee": money(facts.fee, facts.currency) if facts.fee else "",
            "link": facts.link, "creditor": facts.creditor, "reference": facts.reference,
            "consequences": consequences(facts.jurisdiction), "support": facts.support,
        }


def pick_locale(texts: Mapping[str, object], wanted: str | None, fallbacks: tuple[str, ...]) -> str:
    """The language to write in: the customer's if the step has it, else the first fallback it has."""
    for locale in (wanted, *fallbacks):
        if locale and locale in texts:
            return locale
    return next(iter(texts))


@dataclass(frozen=True)
class Rendered:
    locale: str
    subject: str
    body: str
    sms: str


def render(texts: Mapping[str, Mapping[str, str]], facts: Facts, locale: str) -> Rendered:
    """Every part of a step's text in `locale` (which `pick_locale` chose among the step's), filled."""
    text = texts[locale]
    filled = values(facts, locale)
    return Rendered(locale, fill(text.get("subject", ""), filled), fill(text.get("body", ""), filled),
                    fill(text.get("sms", ""), filled))
