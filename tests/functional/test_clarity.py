""""Was this bill clear?": the one tap from the bill page (cached, answered by the bill gate) and from a
receipt, the comment in the back office's inbox, and the clarity score."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.analytics.clarity import clarity
from app.analytics.models import ClarityAnswer
from app.extensions import db
from app.models import utcnow
from app.support.models import SupportMessage, SupportRequest
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EN = {"Accept-Language": "en"}


def _form(page: str) -> str:
    """The clarity form's CSRF token (the bill page's forms share one)."""
    start = page.index('action="/b/')
    assert "Was this bill clear?" in page
    return CSRF.search(page, start).group(1)


def _bill(app, client):
    with app.test_request_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor)
    db.session.commit()
    path = open_bill(client, app, invoice)
    return creditor, invoice, path


def test_one_tap_from_the_bill_page_records_the_answer(app, client, session):
    creditor, invoice, path = _bill(app, client)
    page = client.get(path, headers=EN).text
    client.get(path, headers=EN)  # the cached page's form carries this request's token too
    again = client.get(path, headers=EN).text
    token = _form(again)
    answer = client.post(f"{path}/clear", data={"csrf_token": token, "place": "bill", "clear": "yes"}, headers=EN)
    assert answer.status_code == 303
    thanks = client.get(answer.headers["Location"], headers=EN)
    assert thanks.status_code == 200 and "Thank you for telling us" in thanks.text
    found = db.session.scalars(select(ClarityAnswer)).all()
    assert [(a.invoice_id, a.place, a.clear, a.comment) for a in found] == [(invoice.id, "bill", True, None)]
    # Answering again replaces the answer; a comment lands in the inbox as the customer's message.
    answer = client.post(f"{path}/clear", data={"csrf_token": token, "place": "bill", "clear": "no",
                                                "comment": "Which period is the fee for?"}, headers=EN)
    assert answer.status_code == 303
    db.session.expire_all()
    found = db.session.scalars(select(ClarityAnswer)).one()
    assert (found.clear, found.comment) == (False, "Which period is the fee for?")
    request = db.session.get(SupportRequest, found.support_request_id)
    assert request.invoice_id == invoice.id and request.topic == "bill_question"
    body = db.session.scalar(select(SupportMessage.body).where(SupportMessage.request_id == request.id))
    assert body == "Which period is the fee for?"
    assert "Which period" not in page  # nothing of it on the (cached) bill page
    now = utcnow()
    score = clarity(creditor.id, now - timedelta(days=1), now + timedelta(days=1))
    assert (score.answers, score.clear, score.comments, score.score) == (1, 0, 1, 0.0)


def test_the_form_needs_its_csrf_token_and_a_yes_or_no(app, client, session):
    _creditor, _invoice, path = _bill(app, client)
    token = _form(client.get(path, headers=EN).text)
    assert client.post(f"{path}/clear", data={"place": "bill", "clear": "yes"}, headers=EN).status_code == 400
    wrong = client.post(f"{path}/clear", data={"csrf_token": token, "place": "bill", "clear": "maybe"}, headers=EN)
    assert wrong.status_code == 422 and "Please answer yes or no." in wrong.text
    long = client.post(f"{path}/clear", data={"csrf_token": token, "place": "bill", "clear": "no",
                                              "comment": "x" * 4001}, headers=EN)
    assert long.status_code == 422 and "Please keep your comment under 4,000 characters." in long.text
    assert db.session.scalars(select(ClarityAnswer)).all() == []


def test_another_bill_or_no_grant_gets_the_neutral_page(app, client, session):
    _creditor, _invoice, path = _bill(app, client)
    stranger = app.test_client()
    _other_creditor, _other, own_path = _bill(app, stranger)  # granted their own bill only
    token = _form(stranger.get(own_path, headers=EN).text)
    answer = stranger.post(f"{path}/clear", data={"csrf_token": token, "place": "bill", "clear": "yes"}, headers=EN)
    assert answer.status_code != 303 and "Thank you" not in answer.text
    assert db.session.scalars(select(ClarityAnswer)).all() == []


def test_the_receipt_asks_too(app, client, session):
    from app.payments.services import settle

    _creditor, invoice, path = _bill(app, client)
    with app.test_request_context():
        settle(invoice.id, provider="simulator", payment_id="sim_clear_1", amount=invoice.total,
               currency=invoice.currency, method="card", received_at=utcnow(), actor="test")
        db.session.commit()
    page = client.get(path, headers=EN).text
    receipt = re.search(r'href="(/b/[^"]+/receipts/[^"]+)"', page).group(1)
    receipt_page = client.get(receipt, headers=EN).text
    token = _form(receipt_page)
    assert 'name="place" value="receipt"' in receipt_page
    answer = client.post(f"{path}/clear", data={"csrf_token": token, "place": "receipt", "clear": "yes"}, headers=EN)
    assert answer.status_code == 303
    assert db.session.scalars(select(ClarityAnswer.place)).all() == ["receipt"]
