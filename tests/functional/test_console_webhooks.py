"""The console's webhooks (issue 17, items 1 and 2) through the test client, against a real receiver on
127.0.0.1 that verifies every Standard Webhooks signature: an endpoint added with its secret shown once
(never again, never audited), refused addresses and filters named next to their field in the agent's
language, the event filter, disabling and enabling, the secret's rotation with its grace period, the
delivery log with every try, replay of one delivery and of every event since a time, and another
creditor's endpoints and deliveries out of reach from this creditor's console."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from app.audit import AuditEntry
from app.crypto import decrypt
from app.events import services
from app.events.models import CreditorEvent, WebhookDelivery, WebhookEndpoint
from app.extensions import db
from app.i18n import country_zone
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import CSRF, EN
from tests.functional.collection_helpers import deliver
from tests.functional.helpers import open_bill
from tests.functional.test_console import entries, form_post, sign_in
from tests.support.partner_receiver import PartnerReceiver

SECRET = re.compile(r'id="new-secret">(whsec_[A-Za-z0-9+/=]+)<')


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def receiver():
    with PartnerReceiver(secrets=[], path="/hooks") as server:
        yield server


def hooks_page(creditor) -> str:
    return f"/backoffice/console/{creditor.id}/webhooks"


def add(client, creditor, url, **form):
    return form_post(client, hooks_page(creditor), hooks_page(creditor), {"url": url, **form})


def the_endpoint(creditor) -> WebhookEndpoint:
    db.session.expire_all()
    return db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.creditor_id == creditor.id))


def opened(app, creditor):
    """A bill of the creditor opened by its customer (an invoice.opened event)."""
    with app.test_request_context():
        invoice = make_invoice(creditor)
        db.session.commit()
    open_bill(app.test_client(), app, invoice)
    return invoice


def test_an_endpoint_is_added_its_secret_shown_once_and_its_deliveries_logged(app, client, creditor, receiver):
    agent = sign_in(app, client, creditor)
    assert "Webhooks" in client.get(f"/backoffice/console/{creditor.id}", headers=EN).text  # in the console's tabs
    answer = add(client, creditor, receiver.url, description="ERP", scope="some",
                 types=["payment.succeeded", "invoice.opened"])
    assert answer.status_code == 200, answer.text
    secret = SECRET.search(answer.text).group(1)
    endpoint = the_endpoint(creditor)
    assert endpoint.url == receiver.url and endpoint.types == ["invoice.opened", "payment.succeeded"]
    with app.app_context():
        assert decrypt(endpoint.secret_encrypted) == secret
    assert "no-store" in answer.headers["Cache-Control"]
    [entry] = entries(agent, "console_webhook_added")
    assert entry.creditor_id == creditor.id and entry.record_id == endpoint.public_id
    assert entry.detail["types"] == ["invoice.opened", "payment.succeeded"] and entry.detail["url"] == receiver.url
    listing = client.get(hooks_page(creditor), headers=EN).text
    assert secret not in listing and receiver.url in listing and "payment.succeeded" in listing
    page = f"{hooks_page(creditor)}/{endpoint.public_id}"
    assert secret not in client.get(page, headers=EN).text
    every_entry = db.session.scalars(select(AuditEntry.detail).where(AuditEntry.agent_id == agent.id)).all()
    assert secret.removeprefix("whsec_") not in json.dumps(every_entry)

    receiver.secrets.append(secret)  # the receiver knows only what the console showed
    invoice = opened(app, creditor)
    receiver.answers[:] = [(500, {})]
    assert deliver(app).retried == 1
    retrying = client.get(page, headers=EN).text
    assert "HTTP 500" in retrying and "Retrying" in retrying
    assert deliver(app, now=utcnow() + timedelta(hours=1)).delivered == 1
    (got,) = receiver.deliveries
    assert got.body["type"] == "invoice.opened" and got.body["data"]["invoice"]["number"] == invoice.number
    log = client.get(page, headers=EN).text
    assert "HTTP 202" in log and "Delivered" in log and got.body["id"] in log
    assert "Delivered" in client.get(hooks_page(creditor), headers=EN).text  # the last deliveries on the list


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://erp.example.com/hooks", "starting with https://"),
    ("http://erp.example.com/hooks", "starting with https://"),
    ("https://me:pw@erp.example.com/hooks", "user name and password"),
    ("https://erp.example.com/" + "x" * 500, "at most 500 characters"),
])
def test_an_address_that_cannot_be_an_endpoint_is_refused_next_to_the_field(app, client, creditor, url, words):
    agent = sign_in(app, client, creditor)
    answer = add(client, creditor, url)
    assert answer.status_code == 422
    assert words in answer.text and 'id="f-url-error"' in answer.text and 'aria-invalid="true"' in answer.text
    assert the_endpoint(creditor) is None and entries(agent, "console_webhook_added") == []


@pytest.mark.parametrize(("lang", "words"), [("en", "Please choose at least one event type"),
                                             ("nb", "Velg minst én hendelsestype"),
                                             ("de", "Bitte wählen Sie mindestens einen Ereignistyp")])
def test_only_these_types_with_none_checked_is_refused_in_the_agents_language(app, client, creditor, lang, words):
    sign_in(app, client, creditor)
    csrf = CSRF.search(client.get(hooks_page(creditor), headers=EN).text).group(1)
    answer = client.post(f"{hooks_page(creditor)}?lang={lang}", headers={"Accept-Language": lang},
                         data={"csrf_token": csrf, "url": "https://erp.example.com/hooks", "scope": "some"})
    assert answer.status_code == 422
    assert words in answer.text and 'id="t-types-error"' in answer.text
    assert the_endpoint(creditor) is None


def test_the_filter_disabling_and_the_secrets_rotation(app, client, creditor, receiver):
    agent = sign_in(app, client, creditor)
    secret = SECRET.search(add(client, creditor, receiver.url, scope="some", types=["payment.succeeded"]).text).group(1)
    receiver.secrets.append(secret)
    endpoint = the_endpoint(creditor)
    page = f"{hooks_page(creditor)}/{endpoint.public_id}"
    opened(app, creditor)  # invoice.opened: not among its types
    assert deliver(app).delivered == 0

    assert form_post(client, page, f"{page}/types", {"scope": "some"}).status_code == 422
    assert form_post(client, page, f"{page}/types", {"scope": "all"}).status_code == 303
    assert the_endpoint(creditor).types == []
    assert entries(agent, "console_webhook_types_changed")[0].detail["changes"]["types"] == [["payment.succeeded"], []]

    assert form_post(client, page, f"{page}/enabled", {"enabled": "0"}).status_code == 303
    shown = client.get(hooks_page(creditor), headers=EN).text
    assert "Disabled in the console." in shown
    opened(app, creditor)
    assert deliver(app).delivered == 0 and not receiver.deliveries  # no delivery for a disabled endpoint
    assert form_post(client, page, f"{page}/enabled", {"enabled": "1"}).status_code == 303
    assert the_endpoint(creditor).enabled
    switched = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.agent_id == agent.id, AuditEntry.action.like("console_webhook_%abled")).order_by(AuditEntry.id))
    assert list(switched) == ["console_webhook_disabled", "console_webhook_enabled"]

    for grace in ("5", "²", ""):
        refused = form_post(client, page, f"{page}/rotate", {"grace_hours": grace})
        assert refused.status_code == 422 and 'id="f-grace_hours-error"' in refused.text, grace
    assert the_endpoint(creditor).previous_until is None
    rotated = form_post(client, page, f"{page}/rotate", {"grace_hours": "24"})
    assert rotated.status_code == 200
    new_secret = SECRET.search(rotated.text).group(1)
    assert new_secret != secret and "keeps signing next to the new one until" in rotated.text
    assert new_secret not in client.get(page, headers=EN).text
    [entry] = entries(agent, "console_webhook_secret_rotated")
    assert entry.detail["grace_hours"] == 24 and new_secret.removeprefix("whsec_") not in json.dumps(entry.detail)
    # during the grace, each delivery is signed with both: a receiver with either verifies it
    receiver.secrets[:] = [new_secret]
    opened(app, creditor)
    assert deliver(app).delivered == 1
    got = receiver.deliveries[-1]
    assert len(got.signature.split(" ")) == 2
    headers = {"webhook-id": got.webhook_id, "webhook-timestamp": got.timestamp, "webhook-signature": got.signature}
    Webhook(secret).verify(got.raw, headers)
    # no grace: the old secret stops at once
    final = form_post(client, page, f"{page}/rotate", {"grace_hours": "0"})
    last_secret = SECRET.search(final.text).group(1)
    assert "The previous secret no longer signs" in final.text
    receiver.secrets[:] = [last_secret]
    opened(app, creditor)
    assert deliver(app).delivered == 1 and len(receiver.deliveries[-1].signature.split(" ")) == 1
    assert not receiver.refused


def test_replay_of_one_delivery_and_of_every_event_since_a_time(app, client, creditor, receiver):
    agent = sign_in(app, client, creditor)
    secret = SECRET.search(add(client, creditor, receiver.url).text).group(1)
    receiver.secrets.append(secret)
    endpoint = the_endpoint(creditor)
    page = f"{hooks_page(creditor)}/{endpoint.public_id}"
    opened(app, creditor)
    (delivery,) = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).all()
    pending = form_post(client, page, f"{page}/deliveries/{delivery.id}/replay")
    assert pending.status_code == 409 and "still on its way" in pending.text
    assert deliver(app).delivered == 1

    assert form_post(client, page, f"{page}/deliveries/{delivery.id}/replay").status_code == 303
    assert deliver(app).delivered == 1
    first, again = receiver.deliveries
    assert again.body == first.body and again.webhook_id != first.webhook_id
    [entry] = entries(agent, "console_webhook_replayed")
    assert entry.detail["delivery"] == delivery.id and entry.detail["new_delivery"] not in (None, delivery.id)
    assert "sent again" in client.get(page, headers=EN).text

    # a dead delivery (the endpoint was disabled when its turn came) goes back in the queue as it was
    opened(app, creditor)
    form_post(client, page, f"{page}/enabled", {"enabled": "0"})
    assert form_post(client, page, f"{page}/replay", {"since": "2026-01-01T00:00"}).status_code == 409
    assert deliver(app).dead == 1
    dead = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                             .order_by(WebhookDelivery.id.desc()).limit(1))
    assert "Not delivered" in client.get(page, headers=EN).text
    form_post(client, page, f"{page}/enabled", {"enabled": "1"})
    assert form_post(client, page, f"{page}/deliveries/{dead.id}/replay").status_code == 303
    assert db.session.get(OutboxMessage, dead.outbox_message_id).status == OutboxStatus.PENDING
    assert deliver(app).delivered == 1 and receiver.deliveries[-1].webhook_id not in {first.webhook_id,
                                                                                       again.webhook_id}

    for bad in ("yesterday", "2999-01-01T10:00", "", "0001-01-01T00:00"):
        refused = form_post(client, page, f"{page}/replay", {"since": bad})
        assert refused.status_code == 422 and 'id="f-since-error"' in refused.text, bad
    # every event since a time typed as the clock reads where the creditor is
    an_hour_ago = (utcnow() - timedelta(hours=1)).astimezone(country_zone(creditor.country))
    events = db.session.scalar(select(func.count()).select_from(CreditorEvent)
                               .where(CreditorEvent.creditor_id == creditor.id))
    done = form_post(client, page, f"{page}/replay", {"since": an_hour_ago.strftime("%Y-%m-%dT%H:%M")},
                     follow_redirects=True)
    assert f"{events} events are queued to be sent again." in done.text
    assert deliver(app).delivered == events
    assert entries(agent, "console_webhook_replayed_since")[0].detail["deliveries"] == events
    assert not receiver.refused


def test_another_creditors_endpoints_and_deliveries_are_404_from_this_console(app, client, creditor, receiver):
    with app.test_request_context():
        other = make_creditor("DE")
        theirs = services.add_endpoint(other, receiver.url, types=["invoice.opened"]).endpoint
        db.session.commit()
    opened(app, other)
    their_delivery = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == theirs.id))
    sign_in(app, client, creditor)
    form_post(client, hooks_page(creditor), hooks_page(creditor), {"url": "https://erp.example.com/mine"})
    mine = the_endpoint(creditor)
    csrf = CSRF.search(client.get(hooks_page(creditor), headers=EN).text).group(1)
    base = hooks_page(creditor)
    form = {"csrf_token": csrf, "scope": "all", "enabled": "0", "grace_hours": "0", "since": "2026-01-01T00:00"}
    for method, url in [("GET", f"{base}/{theirs.public_id}"), ("POST", f"{base}/{theirs.public_id}/types"),
                        ("POST", f"{base}/{theirs.public_id}/enabled"), ("POST", f"{base}/{theirs.public_id}/rotate"),
                        ("POST", f"{base}/{theirs.public_id}/replay"),
                        ("POST", f"{base}/{theirs.public_id}/deliveries/{their_delivery.id}/replay"),
                        # their delivery under my endpoint
                        ("POST", f"{base}/{mine.public_id}/deliveries/{their_delivery.id}/replay")]:
        answer = client.open(url, method=method, data=form, headers=EN)
        assert answer.status_code == 404, f"{method} {url} answered {answer.status_code}"
    assert receiver.url not in client.get(base, headers=EN).text
    db.session.expire_all()
    theirs = db.session.get(WebhookEndpoint, theirs.id)
    assert theirs.enabled and theirs.types == ["invoice.opened"] and theirs.previous_until is None
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)
                             .where(WebhookDelivery.endpoint_id == theirs.id)) == 1
