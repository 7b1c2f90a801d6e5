"""A data subject's export as a readable PDF (WeasyPrint, through the invoice PDF's offline printer),
in the page's language: each kind of data with what it is and what happens to it, and its records."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_babel import gettext as _

from app.billing.pdf import html_to_pdf
from app.creditors.models import Creditor
from app.privacy.holdings import Treatment


def holding_titles() -> dict[str, str]:
    """Each holding's name for a reader, in the current locale."""
    return {
        "invoices": _("Invoices"), "invoice_lines": _("Invoice lines"), "credit_notes": _("Credit notes"),
        "credit_note_lines": _("Credit note lines"), "payments": _("Payments"), "refunds": _("Refunds"),
        "instalments": _("Instalments"), "reminders": _("Reminders reported by the creditor"),
        "dunning_notices": _("Reminder steps"), "invoice_events": _("Timeline of the bills"),
        "support_requests": _("Contact requests"), "support_messages": _("Messages"),
        "resolutions": _("Disputes, promises, deferrals and payment plans"), "attachments": _("Attachments"),
        "access_links": _("Links to the bill"), "payment_attempts": _("Payment attempts"),
        "webhook_events": _("Notifications from payment providers"), "bank_entries": _("Bank payments"),
        "collection_cases": _("Debt collection cases"), "collection_case_events": _("Reports from debt collection"),
        "agent_notes": _("Internal notes"), "dunning_messages": _("Reminder messages"), "letters": _("Letters"),
        "letter_prints": _("Letters printed"), "outbox_messages": _("E-mails and text messages sent"),
        "contact_changes": _("Contact details waiting for confirmation"), "customers": _("Customer details"),
    }


def treatment_words() -> dict[str, str]:
    return {
        Treatment.KEPT: _("Kept: bookkeeping law requires it, or it names no one."),
        Treatment.REDUCED: _("Reduced after the retention period: the personal details are removed."),
        Treatment.DELETED: _("Deleted after the retention period."),
    }


def render_export_pdf(exported: dict[str, Any], customer_name: str, creditor: Creditor) -> bytes:
    html = render_template("privacy/export.html", exported=exported, customer_name=customer_name, creditor=creditor,
                           titles=holding_titles(), treatments=treatment_words())
    return html_to_pdf(html)
