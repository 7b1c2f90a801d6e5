"""Content blocks placed in reminder e-mails (issue 18, item 1): the dunning renderer asks `content` for
them, and the HTML and text parts carry the blocks the customer may see, in the e-mail's language, with
an absolute link through our signed redirect; before payment on an overdue bill only information."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.content import services as content
from app.extensions import db
from app.outbox.base import render
from app.outbox.models import OutboxMessage
from tests.unit.dunning.conftest import TODAY, bill, creditor_with_plan, run


@pytest.fixture
def norway(app, session):
    with app.test_request_context():
        yield creditor_with_plan("NO", "NO")


def block(creditor, name, kind, title, **more):
    given = {"name": name, "kind": kind, "placements": ["email"], "priority": 0, "action": "none",
             "texts": {"en": {"title": title, "body": f"About **{name}**.", "cta": ""},
                       "nb": {"title": f"{title} (nb)", "body": f"Om **{name}**.", "cta": ""}}}
    given.update(more)
    return content.create_block(creditor, given)


def test_a_reminder_e_mail_carries_the_information_block_and_no_offer(app, norway):
    creditor, plan = norway
    block(creditor, "prices", "information", "New prices from January", action="link",
          target_url="https://creditor.example.test/prices",
          texts={"en": {"title": "New prices from January", "body": "See **the list**.", "cta": "The prices"}})
    block(creditor, "fibre", "offer", "Faster internet")
    block(creditor, "bill page only", "information", "Only on the page", placements=["bill"])
    bill(creditor, plan, due=TODAY - timedelta(days=14), phone=None, preferred_locale="en")
    run(creditor, TODAY)
    message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "dunning.message")).one()
    assert message.channel == "email"
    rendered = render(message)
    assert "New prices from January" in rendered.html and "New prices from January" in rendered.text
    assert "<strong>the list</strong>" in rendered.html and "See **the list**." in rendered.text
    assert "Faster internet" not in rendered.html  # an offer, on an overdue bill: never
    assert "Only on the page" not in rendered.html
    url = re.search(r'href="(https?://[^"]+/c/[^"]+)"', rendered.html).group(1)
    assert url in rendered.text and url.startswith(app.config["PORTAL_BASE_URL"].rstrip("/"))
    with app.test_client() as customer:
        answer = customer.get(url.removeprefix(app.config["PORTAL_BASE_URL"].rstrip("/")))
    assert answer.status_code == 303 and answer.headers["Location"] == "https://creditor.example.test/prices"


def test_without_blocks_the_e_mail_is_as_before(app, norway):
    creditor, plan = norway
    bill(creditor, plan, due=TODAY - timedelta(days=14), phone=None)
    run(creditor, TODAY)
    message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "dunning.message")).one()
    rendered = render(message)
    assert "/c/" not in rendered.html
