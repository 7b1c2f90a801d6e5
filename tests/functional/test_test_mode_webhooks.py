"""Webhook endpoints live or test (issue 17, test mode): the mode chosen in the console when an endpoint
is made; test events reach test endpoints only and live events live endpoints only, against two real
receivers on 127.0.0.1 that verify every signature; replay keeps to the endpoint's mode; an unknown mode
is refused and nothing is made."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.errors import Conflict
from app.events import services
from app.events.models import CreditorEvent, WebhookDelivery, WebhookEndpoint
from app.extensions import db
from app.models import utcnow
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import EN
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
def receivers():
    with PartnerReceiver(secrets=[], path="/live") as live, PartnerReceiver(secrets=[], path="/test") as test:
        yield live, test


def hooks_page(creditor) -> str:
    return f"/backoffice/console/{creditor.id}/webhooks"


def add(client, creditor, url, **form):
    return form_post(client, hooks_page(creditor), hooks_page(creditor), {"url": url, **form})


def endpoint_at(creditor, url) -> WebhookEndpoint:
    db.session.expire_all()
    return db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.creditor_id == creditor.id,
                                                           WebhookEndpoint.url == url))


def opened(app, creditor, *, livemode):
    with app.test_request_context():
        invoice = make_invoice(creditor, livemode=livemode)
        db.session.commit()
    open_bill(app.test_client(), app, invoice)
    return invoice


def test_test_events_reach_test_endpoints_only_and_live_events_live_endpoints_only(app, client, creditor,
                                                                                      receivers):
    live, test = receivers
    agent = sign_in(app, client, creditor)
    live.secrets.append(SECRET.search(add(client, creditor, live.url).text).group(1))  # live: the default
    answer = add(client, creditor, test.url, mode="test")
    assert answer.status_code == 200
    test.secrets.append(SECRET.search(answer.text).group(1))
    assert endpoint_at(creditor, live.url).livemode is True and endpoint_at(creditor, test.url).livemode is False
    [_live_entry, test_entry] = entries(agent, "console_webhook_added")
    assert test_entry.detail["mode"] == "test"
    listing = client.get(hooks_page(creditor), headers=EN).text
    assert re.search(r'/test</a>.*?<td><span class="tag new">test</span></td>', listing, re.S)
    assert re.search(r'/live</a>.*?<td><span class="tag">live</span></td>', listing, re.S)

    live_bill = opened(app, creditor, livemode=True)
    test_bill = opened(app, creditor, livemode=False)
    assert deliver(app).delivered == 2
    (to_live,) = live.deliveries
    (to_test,) = test.deliveries
    assert to_live.body["livemode"] is True and to_live.body["data"]["invoice"]["number"] == live_bill.number
    assert to_test.body["livemode"] is False and to_test.body["data"]["invoice"]["number"] == test_bill.number
    assert live.refused == test.refused == []

    page = client.get(f"{hooks_page(creditor)}/{endpoint_at(creditor, test.url).public_id}", headers=EN).text
    assert "Gets test events only" in page and to_test.body["id"] in page and to_live.body["id"] not in page


def test_replay_keeps_to_the_endpoints_mode(app, creditor, receivers):
    _live, test = receivers
    with app.test_request_context():
        test_endpoint = services.add_endpoint(creditor, test.url, livemode=False).endpoint
        db.session.commit()
    opened(app, creditor, livemode=True)
    opened(app, creditor, livemode=False)
    with app.test_request_context():
        endpoint = db.session.get(WebhookEndpoint, test_endpoint.id)
        assert services.replay_since(endpoint, utcnow() - timedelta(hours=1)) == 1  # the test event alone
        replayed = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).all()
        assert {d.event.livemode for d in replayed} == {False} and len(replayed) == 2
        live_event = db.session.scalar(select(CreditorEvent).where(CreditorEvent.creditor_id == creditor.id,
                                                                   CreditorEvent.livemode.is_(True)))
        with pytest.raises(Conflict):  # the last guard: no path sends a live event to a test endpoint
            services._deliver(endpoint, live_event)
        db.session.rollback()


@pytest.mark.parametrize(("lang", "words"), [("en", "Choose a live endpoint or a test endpoint."),
                                             ("nb", "Velg et live-endepunkt eller et testendepunkt."),
                                             ("de", "Wählen Sie einen Live-Endpunkt oder einen Test-Endpunkt.")])
def test_an_unknown_mode_is_refused_and_nothing_is_made(app, client, creditor, lang, words):
    sign_in(app, client, creditor)
    answer = form_post(client, hooks_page(creditor), f"{hooks_page(creditor)}?lang={lang}",
                       {"url": "https://erp.example.com/hooks", "mode": "sandbox"})
    assert answer.status_code == 422 and 'id="f-mode-error"' in answer.text and words in answer.text
    assert endpoint_at(creditor, "https://erp.example.com/hooks") is None
