import re

import pytest

from app.links.models import AccessLink
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import issue


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


@pytest.fixture
def guarded(session):
    def make(mode):
        return make_invoice(make_creditor("NO", step_up_mode=mode))

    return make


def start(client, app, invoice):
    issued = issue(app, invoice)
    landing = client.get(f"/l/{issued.token}")
    bill = client.get(landing.headers["Location"])
    assert bill.status_code == 303 and bill.headers["Location"].endswith("/verify")
    form = client.get(bill.headers["Location"])
    assert form.status_code == 200
    assert invoice.number not in form.text and "Kari" not in form.text
    return issued, bill.headers["Location"], csrf_token(form.text)


@pytest.mark.parametrize(
    ("mode", "answer"),
    [("postcode", " 0150 "), ("customer_number", "c-1"), ("date_of_birth", "31.12.1980"),
     ("date_of_birth", "1980-12-31")],
)
def test_correct_answer_shows_the_bill(client, app, guarded, mode, answer):
    invoice = guarded(mode)
    _issued, verify_url, token = start(client, app, invoice)
    answer_page = client.post(verify_url, data={"csrf_token": token, "answer": answer})
    assert answer_page.status_code == 303
    bill = client.get(answer_page.headers["Location"])
    assert bill.status_code == 200 and invoice.number in bill.text


def test_wrong_answers_are_limited_then_the_link_locks(client, app, guarded, session):
    app.config["STEP_UP_MAX_ATTEMPTS"] = 3
    try:
        invoice = guarded("postcode")
        issued, verify_url, token = start(client, app, invoice)
        first = client.post(verify_url, data={"csrf_token": token, "answer": "9999"})
        assert first.status_code == 422 and "2 forsøk igjen" in first.text and 'aria-invalid="true"' in first.text
        client.post(verify_url, data={"csrf_token": token, "answer": "9998"})
        locked = client.post(verify_url, data={"csrf_token": token, "answer": "9997"})
        assert locked.status_code == 404 and "Denne lenken kan ikke brukes" in locked.text
        assert client.post(verify_url, data={"csrf_token": token, "answer": "0150"}).status_code == 404
        assert session.get(AccessLink, issued.link.id).revoked_at is not None
        # the right answer no longer helps, and the link itself is dead
        assert client.get(f"/l/{issued.token}").status_code == 404
    finally:
        app.config["STEP_UP_MAX_ATTEMPTS"] = 5


def test_post_without_csrf_is_refused_and_counts_nothing(client, app, guarded, session):
    invoice = guarded("postcode")
    issued, verify_url, _token = start(client, app, invoice)
    response = client.post(verify_url, data={"answer": "9999"})
    assert response.status_code == 400
    assert session.get(AccessLink, issued.link.id).step_up_failures == 0


def test_empty_answer_is_a_field_error(client, app, guarded):
    invoice = guarded("postcode")
    _issued, verify_url, token = start(client, app, invoice)
    response = client.post(verify_url, data={"csrf_token": token, "answer": ""})
    assert response.status_code == 422 and "Fyll ut dette feltet." in response.text


def test_customer_without_the_data_cannot_pass(client, app, session):
    creditor = make_creditor("NO", step_up_mode="postcode")
    from app.billing.services import import_invoice
    from tests.factories import invoice_payload

    payload = invoice_payload("NOK")
    payload["customer"].pop("address")
    invoice, _ = import_invoice(creditor, payload, actor="test")
    _issued, verify_url, token = start(client, app, invoice)
    assert client.post(verify_url, data={"csrf_token": token, "answer": ""}).status_code == 422
    assert client.post(verify_url, data={"csrf_token": token, "answer": "None"}).status_code == 422


def test_pdf_and_qr_need_the_step_up_too(client, app, guarded):
    invoice = guarded("postcode")
    start(client, app, invoice)
    assert client.get(f"/b/{invoice.public_id}/invoice.pdf").status_code == 303
    assert client.get(f"/b/{invoice.public_id}/epc-qr.svg").status_code == 303


def test_step_up_rate_limit(client, app, guarded):
    app.config["STEP_UP_RATE_LIMIT"] = "2 per minute"
    try:
        invoice = guarded("postcode")
        _issued, verify_url, token = start(client, app, invoice)
        codes = [client.post(verify_url, data={"csrf_token": token, "answer": "1"}).status_code for _ in range(3)]
    finally:
        app.config["STEP_UP_RATE_LIMIT"] = "10 per minute"
    assert codes == [422, 422, 429]
