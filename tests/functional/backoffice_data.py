"""One creditor's records of every kind the back office shows, made through the real services: a
conversation, a dispute, requests for more time and for a plan, a payment with money owed back, a
kept bank credit, a dead message, a saved answer, a note, and an agent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import inspect

from app.backoffice.models import Agent, Note, ReplyTemplate
from app.backoffice.services import create_agent
from app.billing.models import Customer, Invoice
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from app.outbox.services import enqueue
from app.payments.bank.models import BankEntry, BankImport, EntryStatus
from app.payments.models import Payment
from app.payments.services import settle
from app.resolutions import deferrals, disputes, plans
from app.resolutions.models import Resolution
from app.support.models import SupportRequest
from app.support.services import open_request
from tests.factories import make_invoice
from tests.functional.agents import PASSWORD


@dataclass
class Records:
    customer: Customer
    invoice: Invoice  # with the conversation and the dispute (of its first line)
    request: SupportRequest
    dispute: Resolution
    deferral: Resolution
    plan: Resolution
    paid: Invoice
    overpayment: Payment
    entry: BankEntry
    dead: OutboxMessage
    template: ReplyTemplate
    note: Note
    agent: Agent


def every_kind(app, creditor, tmp_path, *, message: str = "Why is it so high?", name: str | None = None) -> Records:
    creditor_id = inspect(creditor).identity[0]  # also for a creditor from another (ended) session
    extra = {"customer": {"external_ref": "C-1", "name": name, "email": "kari@example.test", "phone": "+4791234567",
                          "preferred_locale": "nb",
                          "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"}}} \
        if name else {}
    with app.test_request_context():
        creditor = db.session.get(Creditor, creditor_id)
        today = local_today(creditor.country, utcnow())
        invoice = make_invoice(creditor, lines=2, **extra)
        request, _ = open_request(invoice, topic="bill_question", message=message, contact_method="email",
                                  contact_email=None, contact_phone=None, callback_date=None, callback_window=None,
                                  upload=None, locale="nb", submission_key="a", attachment_dir=str(tmp_path),
                                  today=today)
        dispute, _ = disputes.open_dispute(invoice, reason="wrong_amount", message="The first line is wrong",
                                              line_ids=[invoice.lines[0].id], upload=None,
                                              attachment_dir=str(tmp_path), locale="nb", submission_key="d",
                                              today=today)
        later = make_invoice(creditor, **extra)
        deferral, _ = deferrals.defer(later, later.due_date + timedelta(days=60), locale="nb", submission_key="f",
                                        today=today)
        split = make_invoice(creditor, **extra)
        plan, _ = plans.request_plan(split, 12, "I lost my job.", locale="nb", submission_key="p", today=today)
        paid = make_invoice(creditor, **extra)
        overpayment = settle(paid.id, provider="manual", payment_id=f"manual:{secrets.token_hex(4)}",
                             amount=paid.total + 5000, currency=paid.currency, method="cash", received_at=utcnow(),
                             actor="test")
        bank_import = BankImport(filename="x.xml", file_format="camt.054", sha256=secrets.token_hex(32))
        db.session.add(bank_import)
        db.session.flush()
        entry = BankEntry(import_id=bank_import.id, creditor_id=creditor.id, account=creditor.bank_account_no or "x",
                          bank_ref=secrets.token_hex(6), booked_on=date.today(), amount=invoice.total,
                          currency=invoice.currency, payer_name="K. Nordmann", status=EntryStatus.UNMATCHED,
                          reason="no_match", details={})
        db.session.add(entry)
        dead = enqueue("email", "support.reply", "bounce@example.test", {"request_id": request.id, "message_id": 0},
                       idempotency_key=f"dead-{secrets.token_hex(4)}", creditor_id=creditor.id, locale="nb")
        dead.status, dead.attempts, dead.last_error = OutboxStatus.DEAD, 8, "550 5.1.1 No such user"
        agent = create_agent(f"agent-{secrets.token_hex(3)}@example.test", "Their Agent", PASSWORD, creditor, "admin")
        template = ReplyTemplate(creditor_id=creditor.id, locale="nb", title="Takk", body="Hei {customer}!")
        db.session.add(template)
        note = Note(creditor_id=creditor.id, customer_id=invoice.customer_id, agent_id=agent.id, body="Called her.")
        db.session.add(note)
        db.session.commit()
        records = Records(invoice.customer, invoice, request, dispute, deferral, plan, paid, overpayment, entry, dead,
                          template, note, agent)
        for record in vars(records).values():  # loaded now: their columns stay readable outside this context
            db.session.refresh(record)
    return records
