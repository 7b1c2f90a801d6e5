"""Settlement exactly once, statuses never backwards, notifications once, amounts by the creditor's rules."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.events.models import CreditorEvent
from app.extensions import db
from app.models import utcnow
from app.payments.gateways.base import GatewayEvent, GatewayStatus, PaymentStatus, WebhookError, check_event
from app.payments.ingest import ingest_events
from app.payments.models import Payment, PaymentAttempt, WebhookEvent
from app.payments.refunds import refund_payment, refunds_due
from app.payments.services import apply_status, live_attempt, new_attempt, payment_amount, settle
from tests.factories import make_creditor, make_invoice
from tests.support.database import recorded_statements


def attempt_for(invoice, provider="simulator", amount=None, ref=None):
    attempt = new_attempt(invoice, provider, amount or invoice.balance)
    attempt.provider_ref = ref or f"sim_{attempt.public_ref}"
    db.session.flush()
    return attempt


def succeeded(attempt, amount=None):
    return GatewayStatus(provider_ref=attempt.provider_ref, status=PaymentStatus.SUCCEEDED,
                         amount_received=amount or attempt.amount, currency=attempt.currency, method="card")


def event(attempt, event_id, status, event_type="payment.updated", amount=None):
    return GatewayEvent(provider=attempt.provider, event_id=event_id, event_type=event_type,
                        provider_ref=attempt.provider_ref, status=status, amount=amount or attempt.amount,
                        currency=attempt.currency)


@pytest.fixture
def invoice(session):
    return make_invoice(make_creditor("NO"), lines=2)


class TestAmount:
    def test_full_balance_by_default(self, invoice):
        assert payment_amount(invoice, None) == invoice.balance

    def test_partial_only_where_allowed_and_above_the_minimum(self, invoice):
        with pytest.raises(InvalidData):
            payment_amount(invoice, 1000)
        invoice.creditor.allow_partial_payments, invoice.creditor.min_partial_payment = True, 5000
        assert payment_amount(invoice, 6000) == 6000
        for bad in (4999, invoice.balance + 1, 0, -5, True):
            with pytest.raises(InvalidData):
                payment_amount(invoice, bad)

    def test_nothing_owed(self, invoice):
        attempt = attempt_for(invoice)
        apply_status(attempt, succeeded(attempt), actor="test")
        with pytest.raises(InvalidData):
            payment_amount(invoice, None)


class TestSettlement:
    def test_success_settles_once_whatever_arrives_twice(self, invoice):
        attempt = attempt_for(invoice)
        total = invoice.balance
        assert apply_status(attempt, succeeded(attempt), actor="return_page")
        assert not apply_status(attempt, succeeded(attempt), actor="return_page")
        assert ingest_events("simulator", invoice.creditor_id,
                             [event(attempt, "evt_1", PaymentStatus.SUCCEEDED)]) == ["unchanged"]
        assert settle(invoice.id, provider="simulator", payment_id=attempt.provider_ref, amount=total,
                      currency="NOK", method="card", received_at=utcnow(), actor="retry") is None
        payments = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
        assert len(payments) == 1 and payments[0].amount == total and payments[0].refund_due == 0
        assert invoice.status == InvoiceStatus.PAID and invoice.balance == 0 and invoice.amount_paid == total

    def test_an_attempts_success_writes_the_bill_once_and_reads_no_payment_first(self, invoice):
        """Settling an attempt's success: the bill's new amount and status in one UPDATE (the creditor's
        events, with no endpoint to send them to, wait for the same flush), and no read for a duplicate
        payment that the attempt's own status, decided under the bill's lock, rules out."""
        attempt = attempt_for(invoice)
        with recorded_statements(db.session.get_bind().engine) as statements:
            assert apply_status(attempt, succeeded(attempt), actor="t")
        flat = [" ".join(s.split()).upper() for s in statements]
        assert len([s for s in flat if s.startswith("UPDATE INVOICES ")]) == 1
        assert not [s for s in flat if s.startswith("SELECT") and " FROM PAYMENTS " in f"{s} "]
        db.session.expire_all()
        assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == attempt.amount
        assert [e.kind for e in invoice.events][-2:] == ["payment_recorded", "status_changed"]
        assert db.session.scalar(select(func.count(CreditorEvent.id)).where(
            CreditorEvent.invoice_id == invoice.id, CreditorEvent.type == "payment.succeeded")) == 1

    def test_status_never_moves_backwards(self, invoice):
        attempt = attempt_for(invoice)
        apply_status(attempt, GatewayStatus(attempt.provider_ref, PaymentStatus.REQUIRES_ACTION), actor="t")
        assert not apply_status(attempt, GatewayStatus(attempt.provider_ref, PaymentStatus.PENDING), actor="t")
        apply_status(attempt, succeeded(attempt), actor="t")
        for late in (PaymentStatus.FAILED, PaymentStatus.CANCELLED, PaymentStatus.PROCESSING, PaymentStatus.PENDING):
            assert not apply_status(attempt, GatewayStatus(attempt.provider_ref, late), actor="t")
        assert attempt.status == PaymentStatus.SUCCEEDED and invoice.status == InvoiceStatus.PAID

    def test_a_late_success_after_a_failure_still_counts(self, invoice):
        attempt = attempt_for(invoice)
        apply_status(attempt, GatewayStatus(attempt.provider_ref, PaymentStatus.FAILED, failure_reason="timeout"),
                     actor="t")
        assert attempt.status == PaymentStatus.FAILED and attempt.failure_reason == "timeout"
        assert apply_status(attempt, succeeded(attempt), actor="t") and invoice.status == InvoiceStatus.PAID

    def test_a_provider_paying_more_than_its_attempt_is_recorded_not_booked_and_owed_back(self, invoice):
        attempt = attempt_for(invoice)
        total = invoice.balance
        apply_status(attempt, succeeded(attempt, amount=total + 5000), actor="t")
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
        assert (payment.amount, payment.refund_due, payment.mismatch) == (total + 5000, total + 5000, "amount")
        assert invoice.status == InvoiceStatus.OPEN and invoice.balance == total
        assert "payment_mismatch" in [e.kind for e in invoice.events]
        assert refunds_due(invoice.creditor_id) == [payment]

    def test_an_overpayment_of_the_bill_is_settled_and_flagged_for_refund(self, invoice):
        invoice.creditor.allow_partial_payments = True
        first, second = attempt_for(invoice, amount=3000), attempt_for(invoice)
        apply_status(first, succeeded(first), actor="t")
        apply_status(second, succeeded(second), actor="t")  # the whole balance, asked before the first was paid
        payment = db.session.scalar(select(Payment).where(Payment.attempt_id == second.id))
        assert payment.refund_due == 3000 and payment.mismatch is None and invoice.status == InvoiceStatus.PAID
        assert "refund_due" in [e.kind for e in invoice.events]
        assert refunds_due(invoice.creditor_id) == [payment]

    def test_second_payment_of_a_paid_invoice_is_owed_back_in_full(self, invoice):
        first, second = attempt_for(invoice), attempt_for(invoice)
        apply_status(first, succeeded(first), actor="t")
        assert second.status == PaymentStatus.CANCELLED  # other attempts stop when the invoice is paid
        apply_status(second, succeeded(second), actor="t")  # the customer paid in another tab anyway
        payments = db.session.scalars(
            select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.id)).all()
        assert [p.refund_due for p in payments] == [0, second.amount]

    def test_partial_payment_leaves_the_rest(self, invoice):
        invoice.creditor.allow_partial_payments = True
        attempt = attempt_for(invoice, amount=3000)
        apply_status(attempt, succeeded(attempt), actor="t")
        assert invoice.status == InvoiceStatus.PARTIALLY_PAID and invoice.amount_paid == 3000

    def test_currency_must_match(self, invoice):
        with pytest.raises(InvalidData):
            settle(invoice.id, provider="bank_transfer", payment_id="b1", amount=100, currency="EUR",
                   method="bank_transfer", received_at=utcnow(), actor="t")


class TestAttempts:
    def test_live_attempt_is_reused_and_expired_is_not(self, invoice):
        attempt = attempt_for(invoice)
        assert live_attempt(invoice.id, "simulator", invoice.balance) is attempt
        assert live_attempt(invoice.id, "simulator", invoice.balance - 1) is None
        assert live_attempt(invoice.id, "stripe", invoice.balance) is None
        attempt.expires_at = utcnow() - timedelta(minutes=1)
        assert live_attempt(invoice.id, "simulator", invoice.balance) is None


class TestEvents:
    def test_duplicates_unknown_types_and_unknown_payments(self, invoice):
        attempt = attempt_for(invoice)
        stored = GatewayEvent("simulator", "evt_x", "payment.note", attempt.provider_ref, None)
        unknown = GatewayEvent("simulator", "evt_y", "payment.updated", "sim_nobody", PaymentStatus.SUCCEEDED,
                               amount=1, currency="NOK")
        first, repeat = (event(attempt, "evt_1", PaymentStatus.SUCCEEDED) for _ in range(2))
        outcomes = ingest_events("simulator", invoice.creditor_id, [first, repeat, stored, unknown])
        assert outcomes == ["applied", "duplicate", "stored", "unknown_payment"]
        assert db.session.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.provider == "simulator",
                                 WebhookEvent.event_id.in_(["evt_1", "evt_x", "evt_y"]))) == 3

    def test_an_event_applied_as_it_arrives_is_not_read_back(self, invoice):
        """The event just stored is applied as stored (its outcome and time written by an UPDATE), not
        read again by its new id."""
        attempt = attempt_for(invoice)
        with recorded_statements(db.session.get_bind().engine) as statements:
            assert ingest_events("simulator", invoice.creditor_id,
                                 [event(attempt, "evt_r", PaymentStatus.SUCCEEDED)]) == ["applied"]
        assert not [s for s in statements if s.lstrip().upper().startswith("SELECT")
                    and "FROM webhook_events WHERE webhook_events.id" in " ".join(s.split())]
        db.session.expire_all()
        stored = db.session.scalar(select(WebhookEvent).where(WebhookEvent.event_id == "evt_r"))
        assert stored.outcome == "applied" and stored.applied_at is not None
        assert stored.event["status"] == PaymentStatus.SUCCEEDED and stored.creditor_id == invoice.creditor_id

    def test_events_verified_for_one_creditor_never_touch_another(self, invoice):
        other = make_invoice(make_creditor("DE"))
        attempt = attempt_for(other)
        assert ingest_events("simulator", invoice.creditor_id,
                             [event(attempt, "evt_2", PaymentStatus.SUCCEEDED)]) == ["unknown_payment"]
        assert other.status == InvoiceStatus.OPEN and attempt.status == PaymentStatus.PENDING

    def test_shuffled_duplicated_events_give_the_exact_ledger(self, invoice):
        import random

        attempts = [attempt_for(invoice, amount=1000 + i) for i in range(5)]
        invoice.creditor.allow_partial_payments = True
        stream = []
        for i, a in enumerate(attempts):
            stream += [event(a, f"e{i}p", PaymentStatus.PROCESSING), event(a, f"e{i}s", PaymentStatus.SUCCEEDED),
                       event(a, f"e{i}f", PaymentStatus.FAILED)]
        stream = stream * 3
        random.Random(7).shuffle(stream)
        ingest_events("simulator", invoice.creditor_id, stream)
        assert invoice.amount_paid == sum(a.amount for a in attempts)
        assert all(a.status == PaymentStatus.SUCCEEDED for a in attempts)


def test_parallel_settlements_make_one_payment(app):
    """Webhooks and return pages for one payment in parallel, in real transactions, on PostgreSQL
    (the row lock and the unique key). DESIGN.md: concurrency tests run on PostgreSQL."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("concurrency is tested on PostgreSQL (CI sets TEST_DATABASE_URL)")
        invoice = make_invoice(make_creditor("NO"))
        attempt = attempt_for(invoice)
        db.session.commit()
        invoice_id, creditor_id, ref, total = invoice.id, invoice.creditor_id, attempt.provider_ref, invoice.balance
        attempt_id = attempt.id
        db.session.remove()
    errors, barrier = [], threading.Barrier(12)

    def deliver(i):
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                attempt = db.session.get(PaymentAttempt, attempt_id)
                if i % 2:
                    ingest_events("simulator", creditor_id, [GatewayEvent(
                        "simulator", f"evt_par_{i % 4}", "payment.updated", ref, PaymentStatus.SUCCEEDED, amount=total,
                        currency="NOK")])
                else:
                    status = GatewayStatus(ref, PaymentStatus.SUCCEEDED, amount_received=total, currency="NOK")
                    apply_status(attempt, status, actor="return_page")
                db.session.commit()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            with app.app_context():
                db.session.remove()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        with app.app_context():
            payments = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice_id)).all()
            invoice = db.session.get(Invoice, invoice_id)
            # a transaction that lost the race on the unique key may fail; none may double-settle
            assert len(payments) == 1 and payments[0].amount == total
            assert invoice.amount_paid == total and invoice.status == InvoiceStatus.PAID
            assert all("IntegrityError" in e or "could not serialize" in e or "deadlock" in e.lower()
                       for e in errors), errors
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(delete(WebhookEvent).where(WebhookEvent.event_id.like("evt_par_%")))
            conn.execute(delete(Payment).where(Payment.invoice_id == invoice_id))
            conn.execute(delete(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice_id))
            conn.execute(delete(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice_id))
            conn.execute(delete(Invoice).where(Invoice.id == invoice_id))
            conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
            conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


class TestCheckedAgainstTheAttempt:
    """What a provider reports is checked against the attempt, from a notification and from the return page."""

    def test_one_cent_from_the_return_page_is_recorded_and_owed_back_not_booked(self, invoice):
        attempt = attempt_for(invoice)
        total = invoice.balance
        assert apply_status(attempt, succeeded(attempt, amount=1), actor="customer")
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
        assert (payment.amount, payment.refund_due, payment.mismatch) == (1, 1, "amount")
        assert (invoice.status, invoice.balance, invoice.amount_paid) == (InvoiceStatus.OPEN, total, 0)
        # paying it back leaves the bill as it is: the payment was never counted in it
        refund_payment(payment, 1, channel="bank_transfer", key="k1", actor="agent:1")
        assert (invoice.amount_paid, payment.refund_due, payment.refunded) == (0, 0, 1)

    def test_another_currency_is_recorded_in_it(self, invoice):
        attempt = attempt_for(invoice)
        update = GatewayStatus(provider_ref=attempt.provider_ref, status=PaymentStatus.SUCCEEDED,
                               amount_received=attempt.amount, currency="EUR")
        assert apply_status(attempt, update, actor="customer")
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
        assert (payment.currency, payment.mismatch, payment.refund_due) == ("EUR", "currency", attempt.amount)
        assert invoice.amount_paid == 0

    @pytest.mark.parametrize("amount", [0, -1, 2 ** 63, "100", 1.5, True])
    def test_an_amount_that_is_not_one_changes_nothing(self, invoice, amount):
        attempt = attempt_for(invoice)
        update = GatewayStatus(provider_ref=attempt.provider_ref, status=PaymentStatus.SUCCEEDED,
                               amount_received=amount, currency="NOK")
        assert not apply_status(attempt, update, actor="customer")
        assert attempt.status == PaymentStatus.PENDING and invoice.amount_paid == 0
        assert db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == invoice.id)) == 0


def _event(**changes):
    values = {"provider": "simulator", "event_id": "evt_1", "event_type": "payment.succeeded", "provider_ref": "sim_1",
              "status": PaymentStatus.SUCCEEDED, "amount": 100, "currency": "NOK", "payment_id": "sim_1",
              "method": "card", "occurred_at": utcnow()}
    return GatewayEvent(**(values | changes))


@pytest.mark.parametrize("changes", [
    {}, {"amount": None, "currency": None}, {"provider_ref": None, "status": None, "amount": None},
    {"status": PaymentStatus.FAILED, "amount": 0}, {"amount": 10 ** 13 - 1},
], ids=repr)
def test_check_event_takes_what_our_records_hold(changes):
    check_event(_event(**changes))


@pytest.mark.parametrize("changes", [
    {"amount": 0}, {"amount": -1}, {"amount": 10 ** 13}, {"amount": 2 ** 63}, {"amount": "100"}, {"amount": 1.0},
    {"amount": True}, {"currency": "nok"}, {"currency": "NOKK"}, {"currency": 578}, {"provider_ref": 12},
    {"provider_ref": {"id": 1}}, {"provider_ref": "x" * 101}, {"provider_ref": ""}, {"provider_ref": "a\x00b"},
    {"event_id": None}, {"event_id": 7}, {"event_id": "e" * 201}, {"event_type": ["x"]}, {"status": "paid"},
    {"method": {"type": "card"}}, {"occurred_at": "yesterday"},
], ids=repr)
def test_check_event_refuses_what_they_cannot(changes):
    with pytest.raises(WebhookError):
        check_event(_event(**changes))
