"""What a bill page shows, built in one place for the customer's page (`portal`) and the agents'
preview of it (`backoffice`): the bill's facts, what the customer may do now (pay, and how much;
the self-service options), the conversations, receipts and a collection case. Neither blueprint
imports the other; both import this."""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import get_locale

from app.billing.corrections import credit_notes
from app.billing.invoice_law import rates_of
from app.billing.models import Invoice, InvoiceLine, InvoiceStatus
from app.billing.services import due_state, other_bills_owed, payments_received
from app.billing.transfer import transfer_details
from app.content.models import Placement
from app.content.services import PageContent, audience_for, page_content, was_reminded
from app.core.dates import local_today
from app.debt_collection.models import Case
from app.debt_collection.services import active_case
from app.dunning.outlook import default_notice_date, outlook
from app.payments.models import PaymentAttempt
from app.payments.providers import PayOption, pay_options
from app.payments.receipts import receipt_refs
from app.resolutions.services import SelfService, self_service, shown_state
from app.support.services import threads_for

# A bill page lists at most this many ordinary lines (plus every fee); longer bills link to
# the full list, so the page stays small and readable on a phone.
LINES_SHOWN = 50
LINES_FOLD_AFTER = 60


def visible_lines(lines: list[InvoiceLine]) -> tuple[list[InvoiceLine], int]:
    """The lines the bill page shows, and how many it leaves for the full list."""
    if len(lines) <= LINES_FOLD_AFTER:
        return lines, 0
    shown = [line for i, line in enumerate(lines) if i < LINES_SHOWN or line.is_fee]
    return shown, len(lines) - len(shown)


def bill_facts(invoice: Invoice, today: date, due_now: int | None = None) -> dict:
    """What the page says of the bill itself. `due_now`: what the customer pays now when it is not
    the balance (an instalment, the undisputed part)."""
    creditor = invoice.creditor
    notes = credit_notes(invoice.id) if invoice.credited else []
    return {
        "invoice": invoice,
        "creditor": creditor,
        "customer": invoice.customer,
        "lines": invoice.lines,
        "hidden_lines": 0,
        "fees": [line for line in invoice.lines if line.is_fee],
        "payments": payments_received(invoice.id) if invoice.amount_paid else [],
        "credit_notes": notes,
        "vat_rates": rates_of(invoice, notes),
        "state": due_state(invoice, today),
        "transfer": transfer_details(creditor, invoice, due_now),
    }


def self_service_now(invoice: Invoice, today: date, resolutions=None) -> tuple[SelfService, Case | None]:
    """The bill's self-service state, and its collection case when it is in collection."""
    case = active_case(invoice.id) if invoice.status == InvoiceStatus.IN_COLLECTION else None
    return self_service(invoice, today, resolutions, collection_payable=bool(case and case.keep_payments)), case


def pay_options_for(invoice: Invoice) -> list[PayOption]:
    """The ways to pay this bill: its creditor's providers, for its currency and the payer's country
    (a test bill: its providers in test mode, with their test keys, and the simulator)."""
    customer = invoice.customer
    return pay_options(invoice.creditor, invoice.currency, customer.country or invoice.creditor.country,
                       livemode=invoice.livemode)


#: The most other bills the page lists (the earliest due first); a link opens as many (`access.grants`).
OTHER_BILLS_SHOWN = 8


def bill_page_context(invoice: Invoice, today: date, *, has_resolutions: bool = True,
                      has_threads: bool = True, other_bills: bool = True,
                      in_progress: PaymentAttempt | None = None, channel: str | None = None) -> dict:
    """Everything the bill page shows (also for the back office's preview of it). `other_bills`: whether
    the customer owes the creditor other bills (the page lists them; the access read knows). `in_progress`:
    a payment the provider has not confirmed yet (`payments.services.attempt_in_progress`): the page shows
    it instead of the ways to pay, so that nobody pays the bill twice. `channel`: the channel of the link
    the customer came by (the grant's), for the content blocks that target it."""
    found, case = self_service_now(invoice, today, None if has_resolutions else [])
    context = bill_facts(invoice, today, found.payable_now)
    context["state"] = shown_state(context["state"], found, today)
    context["lines"], context["hidden_lines"] = visible_lines(invoice.lines)
    context["found"], context["threads"] = found, threads_for(invoice.id) if has_threads else []
    context["pay_amount"], context["pay_reason"] = found.payable_now, found.pay_reason
    context["held"], context["in_progress"] = found.held, in_progress
    context["pay_options"] = pay_options_for(invoice) if found.payable_now and in_progress is None else []
    context["receipts"] = receipt_refs(invoice.id) if invoice.amount_paid else {}
    context["collection"], context["today"] = case, today
    if case is not None:  # the days of the hand-off and of the partner's figure, where the creditor is
        country = invoice.creditor.country
        context["handed_off_on"] = local_today(country, case.handed_off_at)
        context["claim_on"] = local_today(country, case.partner_claim_at) if case.partner_claim_at else None
    # What happens next by the bill's dunning plan, Germany's consumer default notice, the other bills.
    context["what_next"] = outlook(invoice, today, found.dunning, open_question=None if has_threads else False)
    context["default_notice"] = default_notice_date(invoice)
    context["other_bills"] = other_bills_owed(invoice, limit=OTHER_BILLS_SHOWN + 1) if other_bills else []
    context["content"] = customer_content(invoice, today, Placement.BILL, resolutions=found,
                                          other_bills=context["other_bills"], channel=channel)
    return context


def customer_content(invoice: Invoice, today: date, placement: str, *, resolutions=None,
                     other_bills: list[Invoice] | None = None, reminded: bool = False,
                     channel: str | None = None) -> PageContent:
    """The creditor's content blocks for this customer page, in the page's language (docs/content.md).
    No statement when the creditor wrote no block or its blocks are in this process's cache."""
    if not invoice.creditor.content_version:  # never wrote a block: nothing to choose
        no_offers = invoice.customer.no_offers
        return PageContent([], no_offers, no_offers)
    audience = audience_for(invoice, placement, str(get_locale() or "en"), today, resolutions=resolutions,
                            other_bills=other_bills or [], reminded=reminded, channel=channel)
    return page_content(invoice, audience, today, current_app.config["SECRET_KEY"])


def receipt_content(invoice: Invoice, today: date, *, channel: str | None = None) -> PageContent:
    """The content blocks of a receipt page: `customer_content` with what only the receipt reads (whether
    the bill had a reminder after its due date, the customer's other bills owed), read only when the
    creditor wrote blocks."""
    if not invoice.creditor.content_version:
        return customer_content(invoice, today, Placement.RECEIPT)
    return customer_content(invoice, today, Placement.RECEIPT, reminded=was_reminded(invoice.id),
                            other_bills=other_bills_owed(invoice), channel=channel)
