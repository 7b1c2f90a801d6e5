"""A property (hypothesis) of the invoice state machine against the database: random sequences of the
billing services' actions (bounded, derandomized) never leave an invoice in a state its rules forbid,
and its amounts and events always add up. (The pure properties are in tests/unit/test_properties.py.)"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from app.billing.models import InvoiceEvent, InvoiceStatus
from app.billing.services import (
    PAUSED,
    TRANSITIONS,
    cancel_invoice,
    hold,
    payable_status,
    record_payment,
    release,
    transition,
)
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from tests.factories import make_creditor, make_invoice


class InvoiceLife(RuleBasedStateMachine):
    """One invoice, and whatever the billing services may be asked to do to it, in any order. An action
    the rules refuse raises IllegalTransition (or InvalidData) and changes nothing."""

    app = None  # set by the test

    def __init__(self):
        super().__init__()
        self.creditor = make_creditor()
        self.invoice = make_invoice(self.creditor, lines=2)
        self.paid = 0

    def _attempt(self, action) -> bool:
        before = (self.invoice.status, self.invoice.amount_paid, self._events())
        try:
            action()
        except (IllegalTransition, InvalidData):
            assert (self.invoice.status, self.invoice.amount_paid, self._events()) == before
            return False
        return True

    def _events(self) -> int:
        db.session.flush()
        return len(db.session.scalars(select(InvoiceEvent.id).where(InvoiceEvent.invoice_id == self.invoice.id))
                   .all())

    @rule(share=st.integers(1, 100))
    def pay(self, share):
        amount = max(1, self.invoice.total * share // 100)
        if self._attempt(lambda: record_payment(self.invoice, amount, actor="test", paid_on=self.invoice.issue_date,
                                                method="card")):
            self.paid += amount

    @rule(status=st.sampled_from([InvoiceStatus.DISPUTED, InvoiceStatus.IN_COLLECTION, InvoiceStatus.WRITTEN_OFF]))
    def move(self, status):
        self._attempt(lambda: transition(self.invoice, status, actor="test"))

    @rule()
    def cancel(self):
        self._attempt(lambda: cancel_invoice(self.invoice, actor="test"))

    @rule()
    def hold(self):
        self._attempt(lambda: hold(self.invoice, until=None, actor="test", reason="test"))

    @precondition(lambda self: self.invoice.status in PAUSED)
    @rule()
    def release(self):
        assert self._attempt(lambda: release(self.invoice, actor="test"))

    @invariant()
    def the_status_is_one_the_rules_allow(self):
        invoice = self.invoice
        assert invoice.status in InvoiceStatus.values()
        if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID):
            assert invoice.status == payable_status(invoice)
        if invoice.status == InvoiceStatus.CANCELLED:
            assert invoice.amount_paid == 0
        if invoice.balance <= 0:
            closed_or_paid = (InvoiceStatus.PAID, InvoiceStatus.WRITTEN_OFF, InvoiceStatus.CANCELLED)
            assert invoice.status in closed_or_paid, invoice.status

    @invariant()
    def the_amounts_add_up(self):
        invoice = self.invoice
        assert invoice.amount_paid == self.paid >= 0
        assert invoice.balance == invoice.total - invoice.amount_paid
        assert invoice.total == sum(line.gross for line in invoice.lines)
        events = db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id)
                                    .order_by(InvoiceEvent.id)).all()
        assert sum(e.data["amount"] for e in events if e.kind == "payment_recorded") == invoice.amount_paid
        status = InvoiceStatus.OPEN
        for event in (e for e in events if e.kind == "status_changed"):
            assert event.data["from"] == status and event.data["to"] in TRANSITIONS[status], event.data
            status = event.data["to"]
        assert status == invoice.status


def test_no_sequence_of_actions_breaks_the_invoice_state_machine(app, session):
    with app.test_request_context():
        InvoiceLife.TestCase.settings = settings(max_examples=40, stateful_step_count=12, derandomize=True,
                                                 database=None, deadline=None,
                                                 suppress_health_check=list(HealthCheck))
        InvoiceLife.TestCase().runTest()
