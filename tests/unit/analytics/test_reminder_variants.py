"""Results per variant of a reminder step's text against a made history whose answers are known: sent,
opened, clicks, paid within the window and the days it took, with their intervals; failed messages,
messages still in their window and test bills as the module says."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.analytics.reminder_variants import WINDOW_DAYS, step_results
from app.billing.models import InvoiceEvent
from app.billing.services import record_payment
from app.dunning import services
from app.dunning.models import Message, MessageStatus, Notice
from app.extensions import db
from app.links.models import AccessLink
from tests.factories import make_invoice
from tests.unit.dunning.conftest import TODAY, creditor_with_plan

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
T_975_5 = 2.570582  # Student's t, 97.5 % quantile, 5 degrees of freedom (any t table)


@pytest.fixture
def experiment(app, session):
    with app.test_request_context():
        creditor, _ = creditor_with_plan("NO", "NO")
        data = services.shipped_plan("NO")
        texts = data["steps"][1]["texts"]
        data["steps"][1]["variants"] = [{"key": "a", "weight": 1, "texts": texts},
                                        {"key": "b", "weight": 1, "texts": texts},
                                        {"key": "c", "weight": 1, "texts": texts}]
        plan = services.save_plan(creditor, data, actor="test", today=TODAY)
        yield creditor, plan, plan.steps[1]


def message(creditor, plan, step, key, *, days_ago: float, paid_after: float | None = None, clicks: int = 0,
            status=MessageStatus.DELIVERED, livemode: bool = True):
    """A reminder of `step` with variant `key` sent `days_ago`, its bill paid `paid_after` days after it."""
    invoice = make_invoice(creditor, livemode=livemode, number=f"X-{secrets.token_hex(4)}")
    sent_at = NOW - timedelta(days=days_ago)
    link = AccessLink(key_hash=secrets.token_hex(32), invoice_id=invoice.id, channel="sms", expires_at=NOW,
                      open_count=clicks, last_opened_at=sent_at + timedelta(hours=1) if clicks else None)
    db.session.add(link)
    db.session.flush()
    found = Message(creditor_id=creditor.id, customer_id=invoice.customer_id, channel="sms", recipient="+4791234567",
                    locale="nb", status=status, variant=key, link_id=link.id, created_at=sent_at)
    db.session.add(found)
    db.session.flush()
    db.session.add(Notice(creditor_id=creditor.id, invoice_id=invoice.id, customer_id=invoice.customer_id,
                          plan_id=plan.id, step_id=step.id, position=step.position, kind=step.kind, channel="sms",
                          message_id=found.id, decided_on=sent_at.date(), sent_at=sent_at))
    if paid_after is not None:
        event = record_payment(invoice, invoice.balance, actor="test", paid_on=sent_at.date(), method="bank")
        event.created_at = sent_at + timedelta(days=paid_after)
    db.session.flush()
    return found


def test_results_per_variant_are_the_known_answers(experiment):
    creditor, plan, step = experiment
    for paid_after in (2, 4, 6, 8, 10, 12):
        message(creditor, plan, step, "a", days_ago=30, paid_after=paid_after, clicks=1)
    message(creditor, plan, step, "a", days_ago=30, paid_after=WINDOW_DAYS + 6, clicks=2)  # paid after the window
    for clicks in (3, 0, 0):
        message(creditor, plan, step, "a", days_ago=30, clicks=clicks)  # not paid
    message(creditor, plan, step, "a", days_ago=3, paid_after=1, clicks=1)  # its window is still open
    message(creditor, plan, step, "a", days_ago=30, paid_after=1, status=MessageStatus.FAILED)  # never arrived
    message(creditor, plan, step, "a", days_ago=30, paid_after=1, clicks=5, livemode=False)  # a test bill
    for _ in range(4):
        message(creditor, plan, step, "b", days_ago=20, paid_after=1.5, clicks=1)
    # another step's message with the same key is not this step's
    message(creditor, plan, plan.steps[2], "a", days_ago=30, paid_after=1, clicks=1)

    a, b, c = step_results(creditor.id, step.id, now=NOW)
    assert (a.key, a.sent, a.opened, a.clicks, a.in_window, a.paid) == ("a", 11, 9, 1 * 6 + 2 + 3 + 1, 10, 6)
    # the paid rate, 6 of 10: Wilson's interval from its formula
    z = 1.959964
    centre = (0.6 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * math.sqrt(0.6 * 0.4 / 10 + z * z / 400)
    assert a.pay_rate.estimate == pytest.approx(0.6)
    assert (a.pay_rate.low, a.pay_rate.high) == (pytest.approx(centre - half, abs=1e-5),
                                                 pytest.approx(centre + half, abs=1e-5))
    # days to pay: 2, 4, ..., 12: mean 7, s = sqrt(14), t(0.975, 5)
    half_t = T_975_5 * math.sqrt(14) / math.sqrt(6)
    assert a.days_to_pay.estimate == pytest.approx(7)
    assert (a.days_to_pay.low, a.days_to_pay.high) == (pytest.approx(7 - half_t, abs=1e-4),
                                                       pytest.approx(7 + half_t, abs=1e-4))
    assert a.open_rate.estimate == pytest.approx(9 / 11) and a.clicks_per_message.estimate == pytest.approx(12 / 11)
    assert (b.sent, b.in_window, b.paid, b.days_to_pay.estimate) == (4, 4, 4, pytest.approx(1.5))
    assert b.pay_rate.estimate == 1 and b.pay_rate.high == pytest.approx(1) and b.pay_rate.low < 1
    assert (c.key, c.sent, c.in_window) == ("c", 0, 0) and not c.pay_rate.known and not c.days_to_pay.known


def test_another_creditors_step_has_no_results(experiment):
    creditor, plan, step = experiment
    message(creditor, plan, step, "a", days_ago=30, paid_after=1)
    with db.session.no_autoflush:
        other, _ = creditor_with_plan("DE", "DE")
    assert step_results(other.id, step.id, now=NOW) == []
    assert db.session.scalar(select(InvoiceEvent.id).limit(1)) is not None


def test_a_message_whose_text_another_step_chose_is_not_counted(experiment):
    creditor, plan, step = experiment
    alone = message(creditor, plan, step, "a", days_ago=30, paid_after=1)
    joined = message(creditor, plan, step, "a", days_ago=30, paid_after=1)
    later = plan.steps[2]  # the collection warning of another bill in the same message speaks for it
    other = make_invoice(creditor, number="X-later")
    db.session.add(Notice(creditor_id=creditor.id, invoice_id=other.id, customer_id=joined.customer_id,
                          plan_id=plan.id, step_id=later.id, position=later.position, kind=later.kind,
                          channel="sms", message_id=joined.id, decided_on=TODAY, sent_at=NOW))
    db.session.flush()
    a = step_results(creditor.id, step.id, now=NOW)[0]
    assert (a.sent, a.paid) == (1, 1) and alone.id != joined.id
