"""A creditor's webhook endpoint end to end, against a real receiver on 127.0.0.1 that verifies every
Standard Webhooks signature with the `standardwebhooks` package: an event delivered and signed (and
checked again by hand, HMAC-SHA256 over "id.timestamp.body"), retried after a 500, each try in the
delivery log, replayed (one delivery, every event since a time), the event filter, a disabled endpoint,
410 Gone, the secret's rotation (both sign during the grace period, then the new one only), the CLI,
and another creditor's endpoints and deliveries out of reach."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from app.errors import Conflict, InvalidData
from app.events import services
from app.events.models import CreditorEvent, WebhookDelivery
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from tests.factories import make_creditor, make_invoice
from tests.functional.collection_helpers import deliver
from tests.functional.helpers import open_bill
from tests.support.partner_receiver import PartnerReceiver


@pytest.fixture
def receiver():
    with PartnerReceiver(secrets=[], path="/hooks") as server:
        yield server


def endpoint_for(app, url, **kw):
    """(creditor, endpoint, secret), committed."""
    with app.test_request_context():
        creditor = make_creditor("NO")
        made = services.add_endpoint(creditor, url, **kw)
        db.session.commit()
    return creditor, made.endpoint, made.secret


def bill(app, creditor, **kw):
    with app.test_request_context():
        invoice = make_invoice(creditor, **kw)
        db.session.commit()
    return invoice


def events_of(creditor) -> list[CreditorEvent]:
    return list(db.session.scalars(select(CreditorEvent).where(CreditorEvent.creditor_id == creditor.id)
                                   .order_by(CreditorEvent.id)))


def signed_by_hand(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The spec's v1 signature, without the package: base64 HMAC-SHA256 of "id.timestamp.body"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_an_event_is_delivered_signed_after_a_500_logged_and_replayed(app, client, session, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    creditor, endpoint, secret = endpoint_for(app, receiver.url, description="ERP")
    receiver.secrets.append(secret)
    invoice = bill(app, creditor)
    open_bill(client, app, invoice)
    (event,) = events_of(creditor)
    assert event.type == "invoice.opened" and event.public_id.startswith("evt_")

    receiver.answers[:] = [(500, {})]
    assert deliver(app).retried == 1 and not receiver.deliveries
    (delivery,) = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)).all()
    message = db.session.get(OutboxMessage, delivery.outbox_message_id)
    assert message.status == OutboxStatus.PENDING and "500" in message.last_error
    assert deliver(app, now=utcnow() + timedelta(hours=1)).delivered == 1
    (got,) = receiver.deliveries
    assert not receiver.refused and message.status == OutboxStatus.DELIVERED
    assert got.body["id"] == event.public_id and got.body["type"] == "invoice.opened"
    assert got.body["data"]["invoice"]["number"] == invoice.number
    assert got.body["data"]["invoice"]["total"] == invoice.total and got.body["data"]["link"]["channel"] == "sms"
    assert got.body["data"]["customer"] == {"external_ref": invoice.customer.external_ref}
    assert invoice.customer.name not in got.raw.decode()  # no more personal data than needed
    assert got.signature == signed_by_hand(secret, got.webhook_id, got.timestamp, got.raw)

    (logged,) = services.deliveries(creditor.id)
    assert logged.status == OutboxStatus.DELIVERED
    assert [(a.succeeded, a.response_code) for a in logged.attempts] == [(False, 500), (True, 202)]
    assert all(a.duration_ms is not None and a.duration_ms >= 0 for a in logged.attempts)
    assert "500" in logged.attempts[0].error

    with app.test_request_context():
        again = services.replay_delivery(db.session.get(WebhookDelivery, delivery.id))
        db.session.commit()
    assert again.id != delivery.id and again.replay_of == delivery.id
    assert deliver(app).delivered == 1
    first, replayed = receiver.deliveries
    assert replayed.body == first.body and replayed.webhook_id != first.webhook_id  # the same event, sent again

    with app.test_request_context():
        assert services.replay_since(endpoint, utcnow() - timedelta(hours=1)) == 1
        assert services.replay_since(endpoint, utcnow() + timedelta(minutes=1)) == 0
        db.session.commit()
    assert deliver(app).delivered == 1 and receiver.deliveries[-1].body["id"] == event.public_id
    assert secret not in caplog.text and secret.removeprefix("whsec_") not in caplog.text
    assert endpoint.secret_encrypted != secret and secret not in endpoint.secret_encrypted


def test_a_pending_delivery_is_not_replayed_and_a_disabled_endpoint_gets_nothing(app, client, session, receiver):
    creditor, endpoint, secret = endpoint_for(app, receiver.url)
    receiver.secrets.append(secret)
    invoice = bill(app, creditor)
    open_bill(client, app, invoice)
    (delivery,) = db.session.scalars(select(WebhookDelivery)).all()
    with pytest.raises(Conflict):
        services.replay_delivery(delivery)
    with app.test_request_context():
        services.set_enabled(endpoint, False, "maintenance")
        db.session.commit()
    assert deliver(app).dead == 1 and not receiver.deliveries
    assert services.deliveries(creditor.id)[0].attempts[0].error == "endpoint disabled"
    with pytest.raises(Conflict):
        services.replay_delivery(delivery)
    open_bill(client, app, invoice)  # a second link opened while disabled: recorded, not delivered
    assert len(events_of(creditor)) == 2 and db.session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.event_id == events_of(creditor)[1].id)) is None
    with app.test_request_context():
        services.set_enabled(endpoint, True)
        services.replay_delivery(delivery)  # dead: back in the queue, the same message
        db.session.commit()
    assert deliver(app).delivered == 1 and len(receiver.deliveries) == 1


def test_the_filter_keeps_other_types_away(app, client, session, receiver):
    creditor, endpoint, _secret = endpoint_for(app, receiver.url, types=["payment.succeeded"])
    invoice = bill(app, creditor)
    open_bill(client, app, invoice)
    assert [e.type for e in events_of(creditor)] == ["invoice.opened"]
    assert db.session.scalar(select(WebhookDelivery.id)) is None
    with pytest.raises(InvalidData) as refused:
        services.set_types(endpoint, ["payment.succeeded", "payment.maybe"])
    assert "payment.maybe" in refused.value.errors["types"]


def test_410_gone_disables_the_endpoint(app, client, session, receiver):
    creditor, endpoint, secret = endpoint_for(app, receiver.url)
    receiver.secrets.append(secret)
    open_bill(client, app, bill(app, creditor))
    receiver.answers[:] = [(410, {})]
    assert deliver(app).dead == 1
    db.session.refresh(endpoint)
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert services.deliveries(creditor.id)[0].attempts[0].response_code == 410


def test_rotation_signs_with_both_secrets_during_the_grace_period_then_with_the_new_one(app, client, session,
                                                                                       receiver):
    creditor, endpoint, old = endpoint_for(app, receiver.url)
    with app.test_request_context():
        new = services.rotate_secret(endpoint, grace=timedelta(hours=2))
        db.session.commit()
    assert new != old and new.startswith("whsec_")
    receiver.secrets[:] = [new]  # a receiver that already moved to the new secret
    invoice = bill(app, creditor)
    open_bill(client, app, invoice)
    assert deliver(app).delivered == 1
    got = receiver.deliveries[-1]
    headers = {"webhook-id": got.webhook_id, "webhook-timestamp": got.timestamp, "webhook-signature": got.signature}
    assert len(got.signature.split(" ")) == 2
    Webhook(old).verify(got.raw, headers)  # a receiver that still has the old one verifies too
    Webhook(new).verify(got.raw, headers)

    endpoint.previous_until = utcnow() - timedelta(seconds=1)  # the grace period is over
    db.session.commit()
    open_bill(client, app, invoice)
    assert deliver(app).delivered == 1
    got = receiver.deliveries[-1]
    headers = {"webhook-id": got.webhook_id, "webhook-timestamp": got.timestamp, "webhook-signature": got.signature}
    assert len(got.signature.split(" ")) == 1
    Webhook(new).verify(got.raw, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.raw, headers)
    with pytest.raises(InvalidData):
        services.rotate_secret(endpoint, grace=timedelta(days=8))


def test_endpoint_urls_are_checked(app, session):
    with app.test_request_context():
        creditor = make_creditor("NO")
        for url, problem in (("http://example.com/hooks", "https"), ("ftp://127.0.0.1/x", "http"),
                             ("https://user:pw@example.com/x", "user name"), ("", "http")):
            with pytest.raises(InvalidData) as refused:
                services.add_endpoint(creditor, url)
            assert problem in refused.value.errors["url"], url
        assert services.add_endpoint(creditor, "http://localhost:9/hooks").endpoint.enabled
        assert services.add_endpoint(creditor, "https://erp.example.com/hooks").endpoint.enabled


def test_endpoints_must_be_https_to_public_addresses_in_production(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_ENV", "production")
    with app.test_request_context():
        creditor = make_creditor("NO")
        for url in ("http://127.0.0.1:9/hooks", "https://127.0.0.1/hooks", "https://10.1.2.3/hooks"):
            with pytest.raises(InvalidData):
                services.add_endpoint(creditor, url)


def test_another_creditors_endpoints_and_deliveries_are_out_of_reach(app, client, session, receiver):
    creditor, endpoint, _secret = endpoint_for(app, receiver.url)
    open_bill(client, app, bill(app, creditor))
    (delivery,) = db.session.scalars(select(WebhookDelivery)).all()
    with app.test_request_context():
        other = make_creditor("NO")
        db.session.commit()
    assert services.find_endpoint(other.id, endpoint.public_id) is None
    assert services.find_delivery(other.id, delivery.id) is None
    assert services.deliveries(other.id) == [] and services.endpoints_of(other.id) == []


def test_the_cli_adds_lists_rotates_shows_deliveries_and_replays(app, client, session, receiver):
    with app.test_request_context():
        creditor = make_creditor("NO")
        db.session.commit()
    runner = app.test_cli_runner()
    added = runner.invoke(args=["events", "endpoints", "add", creditor.slug, receiver.url, "--types",
                                "invoice.opened,payment.succeeded"])
    assert added.exit_code == 0, added.output
    public_id = added.output.split()[1]
    secret = added.output.split("Standard Webhooks): ")[1].split()[0]
    receiver.secrets.append(secret)
    listed = runner.invoke(args=["events", "endpoints", "list", creditor.slug])
    assert public_id in listed.output and "invoice.opened, payment.succeeded" in listed.output
    assert secret not in listed.output
    refused = runner.invoke(args=["events", "endpoints", "add", creditor.slug, "http://example.com/x",
                                  "--types", "nope"])
    assert refused.exit_code != 0 and "URL" in refused.output and "--types" in refused.output
    open_bill(client, app, bill(app, creditor))
    assert deliver(app).delivered == 1
    shown = runner.invoke(args=["events", "deliveries", creditor.slug])
    assert "invoice.opened" in shown.output and "delivered" in shown.output and "202" in shown.output
    delivery_id = shown.output.split()[0]
    replayed = runner.invoke(args=["events", "replay", creditor.slug, "--delivery", delivery_id])
    assert replayed.exit_code == 0, replayed.output
    since = runner.invoke(args=["events", "replay", creditor.slug, "--endpoint", public_id, "--since",
                                (utcnow() - timedelta(hours=1)).isoformat()])
    assert "1 event(s) queued" in since.output
    assert deliver(app).delivered == 2 and len(receiver.deliveries) == 3
    rotated = runner.invoke(args=["events", "endpoints", "rotate-secret", creditor.slug, public_id])
    assert rotated.exit_code == 0 and "whsec_" in rotated.output
    disabled = runner.invoke(args=["events", "endpoints", "disable", creditor.slug, public_id])
    assert disabled.exit_code == 0
    assert "disabled" in runner.invoke(args=["events", "endpoints", "list", creditor.slug]).output
    assert runner.invoke(args=["events", "replay", creditor.slug, "--delivery", "999999"]).exit_code != 0
    assert runner.invoke(args=["events", "replay", creditor.slug]).exit_code != 0
    feed = runner.invoke(args=["events", "feed", creditor.slug])
    assert '"type": "invoice.opened"' in feed.output
