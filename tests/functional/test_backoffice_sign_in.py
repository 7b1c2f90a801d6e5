"""The back office's sign-in: password, then a TOTP second factor (enrolled at the first sign-in),
lockout, timeouts, sign-out everywhere, creditor isolation on the start page, and the audit log."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from app.backoffice.models import Agent
from app.backoffice.services import ACCOUNT_BACKOFF, MAX_FAILURES, second_factor_secret
from app.extensions import db
from app.models import utcnow
from app.support.services import open_request
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import (
    CSRF,
    EN,
    PASSWORD,
    actions,
    cli,
    code_step,
    enrol,
    make_agent,
    password_step,
    token,
)


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def agent(app, creditor):
    return make_agent(app, creditor, "Ola@Example.test")


def test_the_first_sign_in_enrols_the_second_factor_and_later_ones_ask_for_a_code(app, client, agent):
    assert client.get("/backoffice/").headers["Location"].endswith("/backoffice/sign-in")
    secret = enrol(client)
    with app.test_request_context():
        assert second_factor_secret(agent) == secret and agent.totp_secret is None  # stored encrypted
    assert client.get("/backoffice/", headers=EN).status_code == 200
    client.post("/backoffice/sign-out", data={"csrf_token": token(client, "/backoffice/")})
    assert client.get("/backoffice/").status_code == 302

    assert password_step(client).headers["Location"].endswith("/backoffice/sign-in/code")
    used = pyotp.TOTP(secret).generate_otp(agent.totp_last_step)
    assert code_step(client, used).status_code == 422  # the enrolment used this code already
    later = pyotp.TOTP(secret).generate_otp(agent.totp_last_step + 1)
    assert code_step(client, later).status_code == 303
    assert client.get("/backoffice/", headers=EN).status_code == 200
    # every look at the start page counts (the sign-out form's token was read from it)
    assert actions(agent) == ["mfa_enrolled", "recovery_codes_made", "sign_in", "inbox_viewed", "inbox_viewed",
                              "sign_out", "sign_in_refused", "sign_in", "inbox_viewed"]


def test_the_password_alone_does_not_sign_in(client, agent):
    enrol(client)
    client.post("/backoffice/sign-out", data={"csrf_token": token(client, "/backoffice/")})
    password_step(client)
    assert client.get("/backoffice/").status_code == 302  # still asked for the code


def test_wrong_passwords_and_unknown_addresses_get_the_same_answer_and_slow_the_client(client, agent):
    unknown = password_step(client, email="nobody@example.test")
    wrong = password_step(client, password="wrong password!")
    assert unknown.status_code == wrong.status_code == 422
    assert "do not match" in unknown.text and "do not match" in wrong.text
    for _attempt in range(ACCOUNT_BACKOFF.free - 1):
        password_step(client, password="wrong password!")
    slowed = password_step(client)  # the right password, too soon, from this client
    assert slowed.status_code == 429 and "Too many failed attempts" in slowed.text
    assert agent.locked_until is None  # the agent is not locked out (see test_backoffice_security)


def test_wrong_codes_lock_the_account_too(client, agent):
    secret = enrol(client)
    client.post("/backoffice/sign-out", data={"csrf_token": token(client, "/backoffice/")})
    password_step(client)
    for _attempt in range(MAX_FAILURES):
        code_step(client, "000000")
    assert agent.locked_until is not None
    password_step(client)
    assert client.get("/backoffice/sign-in/code").status_code == 302
    assert pyotp.TOTP(secret)  # the secret itself is unchanged


def test_an_idle_session_ends(app, client, agent):
    enrol(client)
    with client.session_transaction() as cookie:
        cookie["bo_seen"] = int(time.time()) - app.config["BACKOFFICE_IDLE_MINUTES"] * 60 - 1
    answer = client.get("/backoffice/")
    assert answer.status_code == 302 and "expired=1" in answer.headers["Location"]
    assert client.get("/backoffice/").status_code == 302


def test_a_session_ends_after_its_hours_even_when_used(app, client, agent):
    enrol(client)
    with client.session_transaction() as cookie:
        cookie["bo_since"] = int(time.time()) - app.config["BACKOFFICE_SESSION_HOURS"] * 3600 - 1
    assert "expired=1" in client.get("/backoffice/").headers["Location"]


def test_sign_out_everywhere_ends_the_other_sessions(app, agent):
    first, second = app.test_client(), app.test_client()
    secret = enrol(first)
    password_step(second)
    assert code_step(second, pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))).status_code == 303
    assert second.get("/backoffice/").status_code == 200
    first.post("/backoffice/sign-out-everywhere", data={"csrf_token": token(first, "/backoffice/")})
    assert second.get("/backoffice/").status_code == 302
    assert first.get("/backoffice/").status_code == 302


def test_the_start_page_shows_only_the_agents_creditors_and_is_audited(app, client, agent, creditor, tmp_path):
    other = make_creditor("DE")
    today = utcnow().date()
    with app.test_request_context():
        mine, _ = open_request(make_invoice(creditor), topic="other", message="<script>x()</script>",
                               contact_method="email", contact_email=None, contact_phone=None, callback_date=None,
                               callback_window=None, upload=None, locale="nb", submission_key="a",
                               attachment_dir=str(tmp_path), today=today)
        theirs, _ = open_request(make_invoice(other), topic="other", message="Hallo", contact_method="email",
                                 contact_email=None, contact_phone=None, callback_date=None, callback_window=None,
                                 upload=None, locale="de", submission_key="b", attachment_dir=str(tmp_path),
                                 today=today)
    db.session.commit()
    enrol(client)
    page = client.get("/backoffice/", headers=EN)
    assert mine.reference in page.text and theirs.reference not in page.text
    assert "inbox_viewed" in actions(agent)


def test_forms_need_csrf_and_sign_in_is_rate_limited(app, client, agent):
    no_token = client.post("/backoffice/sign-in", data={"email": "ola@example.test", "password": PASSWORD})
    assert no_token.status_code == 400
    app.config["BACKOFFICE_SIGN_IN_RATE_LIMIT"] = "2 per minute"
    try:
        codes = [password_step(client, password="wrong password!").status_code for _ in range(3)]
    finally:
        app.config["BACKOFFICE_SIGN_IN_RATE_LIMIT"] = "10 per minute"
    assert codes == [422, 422, 429]


def test_the_cli_refuses_weak_passwords_and_unknown_roles(app, creditor):
    weak = cli(app, "create", "kari@example.test", "--creditor", creditor.slug, "--name", "Kari", "--password", "short")
    assert weak.exit_code == 1 and "at least 12 characters" in weak.output
    assert cli(app, "create", "kari@example.test", "--creditor", creditor.slug, "--name", "Kari", "--role", "boss",
               "--password", PASSWORD).exit_code == 2
    asked = cli(app, "create", "kari@example.test", "--creditor", creditor.slug, "--name", "Kari",
                input=f"{PASSWORD}\n{PASSWORD}\n")
    assert asked.exit_code == 0, asked.output
    agent = db.session.scalar(select(Agent).where(Agent.email == "kari@example.test"))
    assert agent.password_hash.startswith("$argon2id$") and PASSWORD not in agent.password_hash
    assert cli(app, "sign-out", "kari@example.test").exit_code == 0 and agent.session_version == 2


def test_an_agent_answers_a_request_and_the_customer_sees_it_on_the_bill(app, client, agent, creditor, tmp_path):
    from tests.functional.helpers import open_bill

    invoice = make_invoice(creditor)
    with app.test_request_context():
        request, _ = open_request(invoice, topic="bill_question", message="<script>x()</script> Why?",
                                  contact_method="email", contact_email=None, contact_phone=None, callback_date=None,
                                  callback_window=None, upload=None, locale="nb", submission_key="a",
                                  attachment_dir=str(tmp_path), today=utcnow().date())
    db.session.commit()
    enrol(client)
    page = client.get(f"/backoffice/requests/{request.reference}", headers=EN)
    assert page.status_code == 200 and "&lt;script&gt;x()&lt;/script&gt; Why?" in page.text
    empty = client.post(f"/backoffice/requests/{request.reference}/reply",
                        data={"csrf_token": CSRF.search(page.text).group(1), "message": ""}, headers=EN)
    assert empty.status_code == 422 and len(request.messages) == 1
    sent = client.post(f"/backoffice/requests/{request.reference}/reply",
                       data={"csrf_token": CSRF.search(page.text).group(1), "message": "The reading was estimated."})
    assert sent.status_code == 303 and request.status == "answered"
    assert actions(agent)[-2:] == ["request_viewed", "request_replied"]
    customer = app.test_client()
    bill = customer.get(open_bill(customer, app, invoice), headers=EN)
    assert "The reading was estimated." in bill.text and "Ola Nordmann" in bill.text


def test_another_creditors_request_is_not_found(app, client, agent, tmp_path):
    other = make_invoice(make_creditor("DE"))
    with app.test_request_context():
        theirs, _ = open_request(other, topic="other", message="Hallo", contact_method="email", contact_email=None,
                                 contact_phone=None, callback_date=None, callback_window=None, upload=None,
                                 locale="de", submission_key="b", attachment_dir=str(tmp_path), today=utcnow().date())
    db.session.commit()
    enrol(client)
    assert client.get(f"/backoffice/requests/{theirs.reference}").status_code == 404
    answer = client.post(f"/backoffice/requests/{theirs.reference}/reply",
                         data={"csrf_token": token(client, "/backoffice/"), "message": "Hi"})
    assert answer.status_code == 404 and theirs.messages[-1].author == "customer"


def test_an_agent_rejects_a_dispute_and_grants_a_request(app, client, agent, creditor, tmp_path):
    from app.billing.models import InvoiceStatus
    from app.core.dates import local_today
    from app.resolutions import deferrals, disputes
    invoice = make_invoice(creditor)
    today = local_today("NO", utcnow())
    with app.test_request_context():
        dispute, _ = disputes.open_dispute(invoice, reason="wrong_amount", message="Too high", line_ids=None,
                                              upload=None, attachment_dir=str(tmp_path), locale="nb",
                                              submission_key="d", today=today)
    db.session.commit()
    enrol(client)
    home = client.get("/backoffice/", headers=EN)
    assert dispute.reference in home.text
    page = client.get(f"/backoffice/resolutions/{dispute.reference}", headers=EN)
    csrf = CSRF.search(page.text).group(1)
    bad = client.post(f"/backoffice/resolutions/{dispute.reference}/decide",
                      data={"csrf_token": csrf, "outcome": "grant", "message": "x"})
    assert bad.status_code == 422 and dispute.status == "open"
    done = client.post(f"/backoffice/resolutions/{dispute.reference}/decide",
                       data={"csrf_token": csrf, "outcome": "rejected", "message": "The meter reading is right."})
    assert done.status_code == 303 and (dispute.status, invoice.status) == ("rejected", InvoiceStatus.OPEN)
    again = client.post(f"/backoffice/resolutions/{dispute.reference}/decide",
                        data={"csrf_token": csrf, "outcome": "upheld", "message": "Sorry"})
    assert again.status_code == 409 and dispute.status == "rejected"
    with app.test_request_context():
        request, _ = deferrals.defer(invoice, invoice.due_date + timedelta(days=60), locale="nb",
                                       submission_key="f", today=today)
    db.session.commit()
    client.post(f"/backoffice/resolutions/{request.reference}/decide",
                data={"csrf_token": csrf, "outcome": "grant", "message": "Granted, good luck."})
    assert request.status == "active" and invoice.due_date == request.new_date
    assert actions(agent).count("resolution_decided") == 2


def test_supervisors_read_the_audit_log_of_their_creditors_and_agents_cannot(app, client, agent, creditor):
    enrol(client)
    assert client.get("/backoffice/audit").status_code == 404  # a plain agent
    from app.audit import audit
    from app.backoffice.services import grant_role

    grant_role(agent, creditor, "supervisor")
    outsider = make_creditor("DE")
    audit(None, "agent_created", creditor_id=outsider.id, record_type="agent", record_id=999)
    db.session.commit()
    page = client.get("/backoffice/audit", headers=EN)
    assert page.status_code == 200 and "sign_in" in page.text and "mfa_enrolled" in page.text
    assert "999" not in page.text  # another creditor's entry
    assert actions(agent)[-1] == "audit_viewed"


def test_the_agent_previews_the_bill_as_the_customer_sees_it(app, client, agent, creditor):
    invoice = make_invoice(creditor)  # a Norwegian creditor: the customer reads Norwegian
    db.session.commit()
    enrol(client)
    page = client.get(f"/backoffice/invoices/{invoice.id}/preview", headers=EN)
    assert page.status_code == 200 and '<html lang="nb"' in page.text
    assert 'action="/b/' not in page.text  # no pay form
    assert invoice.number in page.text and actions(agent)[-1] == "bill_previewed"
