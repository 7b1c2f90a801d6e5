"""The simulator's records (`DatabaseSimulatorStore`): kept for the session that read them, never
beyond it. The gateway `payment_gateway` keeps per process outlives every request; what its store
read in one request must not answer the next."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from app.billing.models import Customer, Invoice
from app.creditors.models import Creditor
from app.extensions import db
from app.payments.gateways.base import PaymentStatus
from app.payments.models import SimulatorRecord
from app.payments.providers import payment_gateway, simulator_for
from app.payments.services import start_payment
from app.payments.simulator_store import RECORDS_KEY
from tests.factories import make_creditor, make_invoice
from tests.support.database import recorded_statements


def test_a_kept_gateway_reads_each_request_afresh(app):
    """No `session` fixture: each block below is a request of its own, with a session of its own."""
    with app.test_request_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor)
        attempt = start_payment(invoice, simulator_for(creditor), amount=invoice.balance, locale="nb",
                                methods=("card",), return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                                cancel_url="https://pay.example.test/b")
        db.session.commit()
        creditor_id, slug, ref = creditor.id, creditor.slug, attempt.provider_ref
        db.session.remove()
    try:
        with app.test_request_context():
            found = payment_gateway(slug, "simulator")
            assert found is not None and found[1].fetch_status(ref).status == PaymentStatus.PENDING
            db.session.remove()
        with app.test_request_context():  # the customer pays at the "provider"
            simulator_for(db.session.get(Creditor, creditor_id)).store.update(ref, status=PaymentStatus.SUCCEEDED,
                                                                              method="card")
            db.session.commit()
            db.session.remove()
        with app.test_request_context():
            again = payment_gateway(slug, "simulator")
            assert again is not None and again[1] is found[1]  # the same gateway, kept by the process
            assert again[1].fetch_status(ref).status == PaymentStatus.SUCCEEDED
            db.session.remove()
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(delete(SimulatorRecord).where(SimulatorRecord.ref == ref))
            conn.execute(delete(Invoice).where(Invoice.creditor_id == creditor_id))
            conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
            conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


def test_within_a_session_a_record_is_read_once(app, session):
    with app.test_request_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor)
        gateway = simulator_for(creditor)
        attempt = start_payment(invoice, gateway, amount=invoice.balance, locale="nb", methods=("card",),
                                return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                                cancel_url="https://pay.example.test/b")
        session.flush()
        session.info.pop(RECORDS_KEY, None)
        with recorded_statements(session.get_bind().engine) as seen:
            payment, _body, _headers = gateway.choose(attempt.provider_ref, "succeed")
        assert payment.status == PaymentStatus.SUCCEEDED
        assert [s.split()[0] for s in seen] == ["SELECT", "UPDATE"]  # read once, written once
        session.rollback()  # a record dropped by a rollback is read again, not answered from what was kept
        assert session.scalar(select(func.count()).select_from(SimulatorRecord)
                              .where(SimulatorRecord.ref == attempt.provider_ref)) == 0
        assert gateway.store.get(attempt.provider_ref) is None
