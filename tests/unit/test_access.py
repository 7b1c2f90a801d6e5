"""The bill's access read (`app.access.services`) names two tables it does not import the models of
(the pages of resolutions and support sit behind the guard that runs it): they are those models'
tables, and the read sees their rows."""

from __future__ import annotations

import secrets

from app.access.services import RESOLUTIONS, SUPPORT_REQUESTS, bill_access
from app.extensions import db
from app.resolutions.models import Kind, Resolution, Status
from app.support.models import RequestStatus, SupportRequest
from tests.factories import make_creditor, make_invoice


def test_the_named_tables_are_the_models_tables():
    for clause, model in ((RESOLUTIONS, Resolution), (SUPPORT_REQUESTS, SupportRequest)):
        table = model.__table__
        assert clause.name == table.name
        for column in clause.c:
            assert column.name in table.c, f"{table.name} has no column {column.name}"
            targets = {key.target_fullname for key in table.c[column.name].foreign_keys}
            assert targets == {"invoices.id"}, f"{table.name}.{column.name} is not the invoice's key"


def test_the_read_sees_a_bills_resolutions_and_contact_requests(app, session):
    with app.app_context():
        invoice = make_invoice(make_creditor("NO"))
        other = make_invoice(invoice.creditor)
        session.flush()
        before = bill_access(invoice.public_id)
        assert before is not None and (before.has_resolutions, before.has_threads) == (False, False)
        db.session.add(SupportRequest(reference="S-" + secrets.token_hex(4).upper(), creditor_id=invoice.creditor_id,
                                      invoice_id=invoice.id, topic="bill_question", status=RequestStatus.OPEN,
                                      contact_method="email", contact_email="kari@example.test", locale="nb",
                                      submission_key=secrets.token_hex(8)))
        session.flush()
        threads = bill_access(invoice.public_id)
        assert threads is not None and (threads.has_resolutions, threads.has_threads) == (False, True)
        db.session.add(Resolution(reference="R-" + secrets.token_hex(4).upper(), creditor_id=invoice.creditor_id,
                                  invoice_id=invoice.id, kind=Kind.PROMISE, status=Status.OPEN, locale="nb",
                                  submission_key=secrets.token_hex(8)))
        session.flush()
        both = bill_access(invoice.public_id)
        assert both is not None and (both.has_resolutions, both.has_threads) == (True, True)
        untouched = bill_access(other.public_id)  # another bill of the creditor: neither
        assert untouched is not None and (untouched.has_resolutions, untouched.has_threads) == (False, False)
