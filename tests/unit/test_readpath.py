"""The hot reads outside a Session: a held connection on SQLite, the pool elsewhere; never a stale snapshot."""

from sqlalchemy import delete, update

from app.access.services import bill_access
from app.billing.models import Customer, Invoice, InvoiceStatus
from app.creditors.models import Creditor
from app.extensions import db
from tests.factories import make_creditor, make_invoice


def test_reads_without_a_session_see_every_commit(app):
    """No `session` fixture here: the data is committed for real and removed at the end."""
    with app.app_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor)
        db.session.commit()
        creditor_id, invoice_id, public_id = creditor.id, invoice.id, invoice.public_id
        db.session.remove()
    try:
        with app.app_context():
            assert not db.session.registry.has()  # the read below makes no Session
            access = bill_access(public_id)
            assert access is not None and access.invoice_id == invoice_id and access.status == InvoiceStatus.OPEN
            assert access.version[0].tzinfo is not None  # UTCDateTime's own processing, as the ORM gives
            assert not db.session.registry.has()
            assert bill_access("no-such-bill") is None
        with app.app_context(), db.engine.begin() as conn:  # another connection changes the row
            conn.execute(update(Invoice).where(Invoice.id == invoice_id).values(status=InvoiceStatus.DISPUTED))
        with app.app_context():
            changed = bill_access(public_id)  # the same thread's held connection sees it at once
            assert changed.status == InvoiceStatus.DISPUTED and changed.version != access.version
    finally:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(delete(Invoice).where(Invoice.id == invoice_id))
            conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
            conn.execute(delete(Creditor).where(Creditor.id == creditor_id))
