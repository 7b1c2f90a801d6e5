"""Every table that holds data about a customer of a creditor: how to find that customer's rows (and
a bill's), what the export leaves out (secrets, keys), and what minimisation does.

- KEPT: bookkeeping law keeps it as it is (the invoice, its lines, credit notes, payments...), or it
  holds nothing that names the person (a reminder's date and channel);
- REDUCED: the columns in `personal` are emptied (NULL, or "" / {} where the column needs a value);
- DELETED: the rows go (links, attachments with their files, notes, pending contact changes).

`tests/unit/privacy/test_holdings.py` walks the foreign keys of every model from `customers` and
fails for a table that refers to a customer (or to a bill, a payment... of one) and is not listed
here, so that a new model cannot be left out of the export and the erasure silently.

Tables are named, not imported: the agents' notes live with the back office, a layer above this one
(docs/architecture.md); the metadata knows every table once the models are imported (the factory).

The customer's own name and address are not in `personal`: what happens to them depends on
bookkeeping law (`rules`, `services.minimise_customer`, `services.anonymise_customer`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Select, Table, and_, or_, select, union

from app.extensions import db


class Treatment(StrEnum):
    KEPT = "kept"
    REDUCED = "reduced"
    DELETED = "deleted"


def table(name: str) -> Table:
    return db.metadata.tables[name]


Ids = Select  # a select of one id column


@dataclass(frozen=True)
class Holding:
    name: str  # the table
    treatment: Treatment
    why: str  # one line, for docs/privacy.md and the export
    of_customer: Callable[[int], Ids]  # the ids of the customer's rows
    of_invoices: Callable[[Ids], Ids] | None = None  # the ids of these bills' rows (None: the customer's only)
    personal: tuple[str, ...] = ()  # REDUCED: the columns emptied
    omit: tuple[str, ...] = ()  # left out of the export: hashes of secrets, storage keys, one-time keys

    @property
    def table(self) -> Table:
        return table(self.name)


def _invoices(customer_id: int) -> Ids:
    t = table("invoices")
    return select(t.c.id).where(t.c.customer_id == customer_id)


def _by_invoice(name: str) -> tuple[Callable[[int], Ids], Callable[[Ids], Ids]]:
    def of_invoices(invoice_ids: Ids) -> Ids:
        t = table(name)
        return select(t.c.id).where(t.c.invoice_id.in_(invoice_ids))

    return (lambda customer_id: of_invoices(_invoices(customer_id))), of_invoices


def _attempts() -> tuple[Callable[[int], Ids], Callable[[Ids], Ids]]:
    """Tries of the deliveries of the events of these bills (two steps from a bill)."""
    def of_invoices(invoice_ids: Ids) -> Ids:
        attempts, deliveries, events = table("webhook_attempts"), table("webhook_deliveries"), table("creditor_events")
        return select(attempts.c.id).where(attempts.c.delivery_id.in_(
            select(deliveries.c.id).where(deliveries.c.event_id.in_(
                select(events.c.id).where(events.c.invoice_id.in_(invoice_ids))))))

    return (lambda customer_id: of_invoices(_invoices(customer_id))), of_invoices


def _by_parent(name: str, column: str, parent: str) -> tuple[Callable[[int], Ids], Callable[[Ids], Ids]]:
    """Rows of `name` whose `column` refers to a row of `parent`, a table with an invoice_id."""
    def of_invoices(invoice_ids: Ids) -> Ids:
        t, p = table(name), table(parent)
        return select(t.c.id).where(t.c[column].in_(select(p.c.id).where(p.c.invoice_id.in_(invoice_ids))))

    return (lambda customer_id: of_invoices(_invoices(customer_id))), of_invoices


def _by_customer(name: str) -> Callable[[int], Ids]:
    return lambda customer_id: select(table(name).c.id).where(table(name).c.customer_id == customer_id)


def _customer(customer_id: int) -> Ids:
    t = table("customers")
    return select(t.c.id).where(t.c.id == customer_id)


def _letter_prints(customer_id: int) -> Ids:
    t, letters = table("letter_prints"), table("letters")
    return select(t.c.id).where(t.c.letter_id.in_(select(letters.c.id).where(letters.c.customer_id == customer_id)))


def _webhook_events_of_invoices(invoice_ids: Ids) -> Ids:
    """Provider notifications about these bills' payments: by the provider's reference."""
    t, attempts, payments = table("webhook_events"), table("payment_attempts"), table("payments")
    refs = union(select(attempts.c.provider_ref).where(attempts.c.invoice_id.in_(invoice_ids),
                                                       attempts.c.provider_ref.is_not(None)),
                 select(payments.c.provider_payment_id).where(payments.c.invoice_id.in_(invoice_ids)))
    return select(t.c.id).where(t.c.provider_ref.in_(select(refs.subquery().c[0])))


def _outbox_of_customer(customer_id: int) -> Ids:
    """Messages the outbox holds for the customer: those their reminders went by, and any other to
    their address or number at the creditor; never one still waiting to go."""
    t, customers, messages = table("outbox_messages"), table("customers"), table("dunning_messages")
    addresses = union(select(customers.c.email).where(customers.c.id == customer_id, customers.c.email.is_not(None)),
                      select(customers.c.phone).where(customers.c.id == customer_id, customers.c.phone.is_not(None)))
    creditor = select(customers.c.creditor_id).where(customers.c.id == customer_id).scalar_subquery()
    theirs = or_(
        t.c.id.in_(select(messages.c.outbox_message_id).where(messages.c.customer_id == customer_id)),
        and_(t.c.creditor_id == creditor, t.c.recipient.in_(select(addresses.subquery().c[0]))),
    )
    return select(t.c.id).where(theirs, t.c.status != "pending")


def _holdings() -> tuple[Holding, ...]:
    K, R, D = Treatment.KEPT, Treatment.REDUCED, Treatment.DELETED
    return (
        # the bill and what bookkeeping law keeps of it
        Holding("invoices", K, "the invoice: bookkeeping law keeps it", _invoices, lambda ids: ids),
        Holding("invoice_lines", K, "the invoice's lines", *_by_invoice("invoice_lines")),
        Holding("credit_notes", K, "credit notes: bookkeeping law keeps them", *_by_invoice("credit_notes")),
        Holding("credit_note_lines", K, "the credit notes' lines",
                *_by_parent("credit_note_lines", "credit_note_id", "credit_notes")),
        Holding("payments", K, "payments received: bookkeeping law keeps them", *_by_invoice("payments")),
        Holding("analytics_attributions", K, "which reminder brought a payment: ids and a time only",
                *_by_parent("analytics_attributions", "payment_id", "payments")),
        Holding("analytics_clarity", R, "\"was this bill clear?\": the yes or no kept, the comment removed",
                *_by_invoice("analytics_clarity"), personal=("comment",)),
        Holding("refunds", K, "money paid back: bookkeeping law keeps it",
                *_by_parent("refunds", "payment_id", "payments"), omit=("idempotency_key",)),
        Holding("instalments", K, "an agreed plan's instalments: amounts and dates",
                *_by_parent("instalments", "plan_id", "resolutions")),
        Holding("reminders", K, "the creditor's reminders: channel and date only", *_by_invoice("reminders")),
        Holding("dunning_notices", K, "the reminders we sent: step, channel and date only",
                *_by_invoice("dunning_notices")),
        Holding("invoice_events", R, "the bill's timeline: facts kept, words and addresses removed",
                *_by_invoice("invoice_events"), personal=("data",)),
        # the conversation about the bill
        Holding("support_requests", R, "contact requests: the reply address and number removed",
                *_by_invoice("support_requests"), personal=("contact_email", "contact_phone"),
                omit=("submission_key",)),
        Holding("support_messages", R, "messages: their words removed",
                *_by_parent("support_messages", "request_id", "support_requests"), personal=("body",),
                omit=("submission_key",)),
        Holding("resolutions", R,
                "disputes, promises, deferrals and plans: the customer's and the agent's words removed",
                *_by_invoice("resolutions"), personal=("message", "answer"), omit=("submission_key",)),
        Holding("attachments", D, "files the customer sent: deleted, file and row", *_by_invoice("attachments"),
                omit=("storage_key",)),
        Holding("access_links", D, "links to the bill: deleted", *_by_invoice("access_links"),
                omit=("key_hash", "code_hash")),
        Holding("payment_attempts", R, "payment attempts: the provider's answer and return address removed",
                *_by_invoice("payment_attempts"), personal=("failure_reason", "redirect_url", "client_config"),
                omit=("client_config",)),
        Holding("webhook_events", R, "payment providers' notifications: their payload (the payer's details) removed",
                lambda customer_id: _webhook_events_of_invoices(_invoices(customer_id)), _webhook_events_of_invoices,
                personal=("payload",)),
        Holding("bank_entries", R, "bank credits: the payer's name and the payment's text removed",
                *_by_invoice("bank_entries"), personal=("payer_name", "remittance", "resolution_note")),
        Holding("collection_cases", R, "debt collection cases: the case file sent to the partner removed",
                *_by_invoice("collection_cases"), personal=("case_file",)),
        Holding("collection_case_events", R, "what the partner reported: its words and details removed",
                *_by_parent("collection_case_events", "case_id", "collection_cases"), personal=("note", "details")),
        # what the creditor's systems were told (app.events): the bill's facts and the customer's reference
        Holding("creditor_events", R, "events sent to the creditor's systems: their data removed (ids and types kept)",
                *_by_invoice("creditor_events"), personal=("payload",)),
        Holding("webhook_deliveries", K, "deliveries of those events: which endpoint, when (no data of their own)",
                *_by_parent("webhook_deliveries", "event_id", "creditor_events")),
        Holding("webhook_attempts", K, "each try of a delivery: status, response code and time only",
                *_attempts()),
        # the creditor's content blocks (app.content): what the customer saw and clicked, and leads
        Holding("content_exposures", D, "content blocks seen and clicked on the bill: deleted",
                *_by_invoice("content_exposures")),
        Holding("content_leads", K, "leads ('I am interested'): which block and bill, and when; no words",
                *_by_invoice("content_leads")),
        Holding("agent_notes", D, "agents' internal notes: deleted", _by_customer("agent_notes"),
                lambda ids: select(table("agent_notes").c.id).where(table("agent_notes").c.invoice_id.in_(ids))),
        # the customer: their reminders' messages, letters, contact details
        Holding("dunning_messages", R, "reminder messages: the address and the words removed",
                _by_customer("dunning_messages"), personal=("recipient", "subject", "body", "failure")),
        Holding("letters", R, "letters: the address removed", _by_customer("letters"), personal=("address",)),
        Holding("letter_prints", D, "letters printed: deleted with what they said (no copy can be made again)",
                _letter_prints),
        Holding("outbox_messages", R, "e-mails and SMS sent: address, contents and errors removed", _outbox_of_customer,
                personal=("recipient", "payload", "sent_subject", "sent_text", "last_error")),
        Holding("contact_changes", D, "contact details waiting for their code: deleted",
                _by_customer("contact_changes"), omit=("code_hash",)),
        Holding("customers", R, "the customer: e-mail, phone, date of birth and preferences removed; "
                "name and address kept while bookkeeping law keeps the invoice", _customer,
                personal=("email", "phone", "date_of_birth", "preferred_channel", "time_zone", "content_tags",
                          "content_seen")),
    )


HOLDINGS: tuple[Holding, ...] = _holdings()
BY_NAME = {holding.name: holding for holding in HOLDINGS}
