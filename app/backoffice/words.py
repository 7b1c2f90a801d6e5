"""The back office's words for codes: inbox kinds and statuses, methods, and the problems the
services report (InvalidData codes), in the agent's language. Stored statuses and roles have their
words on their enums (`label`); the templates get those enums' `label_of`."""

from __future__ import annotations

from datetime import timedelta

from babel.dates import format_timedelta
from flask_babel import gettext as _

from app.backoffice.case import (
    channel_label,
    contact_field_label,
    message_kind_label,
    partner_report_title,
    provider_label,
)
from app.backoffice.models import Role
from app.backoffice.standing import state_label
from app.billing.models import InvoiceStatus
from app.debt_collection.models import CaseStatus
from app.debt_collection.services import reason_words as hand_off_reason
from app.debt_collection.services import return_reason_words
from app.i18n import LOCALE_NAMES
from app.outbox.models import OutboxStatus
from app.payments.receipts import method_label as payment_method_label
from app.resolutions.models import Status
from app.resolutions.pause import pause_words as pause_label
from app.templating import current_format_locale


def kind_label(kind: str) -> str:
    return {
        "request": _("Message"), "dispute": _("Dispute"), "deferral": _("More time"), "plan": _("Instalment plan"),
        "bank": _("Bank payment to match"), "refund": _("Money to pay back"), "outbox": _("Undelivered message"),
        "partner": _("From the collection partner"),
    }.get(kind, kind)


def item_status_label(status: str) -> str:
    return {"new": _("New"), "waiting": _("Waiting on the customer"), "resolved": _("Resolved"),
            "open": _("Open")}.get(status, status)


def method_label(method: str) -> str:
    return {"bank_transfer": _("Bank transfer"), "cash": _("Cash"), "card_terminal": _("Card terminal"),
            "cheque": _("Cheque"), "other": _("Other")}.get(method, method)


def sentence(words: str) -> str:
    """Words that begin a pill or a line: the first letter a capital ("paid" -> "Paid")."""
    return words[:1].upper() + words[1:]


def payment_label(payment) -> str:
    """How a payment was made, in words: the method, else the provider ("Card", "Bank transfer")."""
    return payment_method_label(payment.method, payment.provider)


def duration(delta: timedelta) -> str:
    """A stretch of time in the agent's language, rounded as people say it ("3 hours", "2 days")."""
    return format_timedelta(abs(delta), threshold=1.5, locale=current_format_locale())


def clock(left: timedelta | None) -> str:
    """An item's clock against the service-level target: the time left, or how far past it."""
    if left is None:
        return ""
    if left >= timedelta(0):
        return _("%(time)s left", time=duration(left))
    return _("%(time)s past the target", time=duration(left))


def locale_label(locale: str) -> str:
    return LOCALE_NAMES.get(locale, locale)


PROBLEMS = {
    "not_positive": lambda: _("Please enter an amount above zero."),
    "not_an_amount": lambda: _("Please enter an amount, such as 125.50."),
    "too many decimals": lambda: _("Please enter an amount, such as 125.50."),
    "not an amount": lambda: _("Please enter an amount, such as 125.50."),
    "more_than_line": lambda: _("That is more than is left of the line to credit."),
    "more_than_due": lambda: _("That is more than is owed back on this payment."),
    "unknown_line": lambda: _("That line is not on this bill."),
    "higher": lambda: _("A correction can only lower a line (it becomes a credit note); bill more on a new invoice."),
    "quantity": lambda: _("Please enter a quantity of zero or more, with at most three decimals."),
    "unit_price": lambda: _("Please enter a unit price of zero or more."),
    "none": lambda: _("Please enter at least one credit or correction."),
    "required": lambda: _("Please fill this in."),
    "too_long": lambda: _("That is too long."),
    "choose": lambda: _("Please choose one."),
    "future": lambda: _("That date is in the future."),
    "email": lambda: _("Please enter an e-mail address."),
    "phone": lambda: _("Please enter a mobile number with its country code, such as +47 912 34 567."),
    "no_provider": lambda: _("This payment was not made through a payment provider; record a bank transfer instead."),
    "other_creditor": lambda: _("That bill belongs to another creditor."),
    "currency": lambda: _("That bill is in another currency."),
    "placeholder": lambda: _("Use only the placeholders listed below, in curly brackets."),
    "taken": lambda: _("A template with this title exists already in this language."),
    "other_customer": lambda: _("That bill is not this customer's."),
    "range": lambda: _("Please check the number or date."),
    "no_step": lambda: _("No reminder step is planned for this bill."),
    "settled": lambda: _("The bill is paid or closed: no reminder goes out."),
}


def problems(errors: dict[str, str]) -> list[str]:
    """Every problem of a service's InvalidData in words, once each, in a stable order."""
    said = []
    for _field, code in errors.items():
        if code.startswith("hand_off:"):
            words = hand_off_reason(code.removeprefix("hand_off:"))
            if words not in said:
                said.append(words)
            continue
        words = PROBLEMS.get(code, lambda: _("Something in the form was not right."))()
        if words not in said:
            said.append(words)
    return said


def template_words() -> dict:
    """For the back office's templates (a context processor of its blueprint)."""
    return {"kind_label": kind_label, "item_status_label": item_status_label, "role_label": Role.label_of,
            "method_label": method_label, "invoice_status_label": InvoiceStatus.label_of,
            "channel_label": channel_label, "locale_label": locale_label, "pause_label": pause_label,
            "resolution_status_label": Status.label_of, "hand_off_reason": hand_off_reason,
            "case_status_label": CaseStatus.label_of, "outbox_status_label": OutboxStatus.label_of,
            "partner_report_title": partner_report_title, "return_reason": return_reason_words,
            "contact_field_label": contact_field_label,
            "message_kind_label": message_kind_label, "provider_label": provider_label, "sentence": sentence,
            "payment_label": payment_label, "clock": clock, "state_label": state_label}
