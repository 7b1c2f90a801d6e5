"""Helpers for the debt-collection tests: a creditor with a partner and a policy, bills past their
final reminder, and running the outbox dispatcher against the partner's receiver."""

from __future__ import annotations

from datetime import timedelta

from app.billing.services import record_reminder
from app.core.dates import local_today
from app.debt_collection.partners import add_partner, set_policy
from app.extensions import db
from app.models import utcnow
from app.outbox.dispatcher import run_once
from tests.factories import make_creditor, make_invoice


def today_for(country: str):
    return local_today(country, utcnow())


def partner_for(app, url: str, slug: str = "nordcollect", **fields):
    with app.test_request_context():
        made = add_partner(slug, "Nord Collect AS", url, phone="+47 22 00 00 00", email="kunde@nordcollect.example",
                           case_page_url="https://nordcollect.example/sak/{reference}", **fields)
        db.session.commit()
    return made


def creditor_with_policy(app, partner, *, keep_payments: bool = False, kind: str = "NO"):
    with app.test_request_context():
        creditor = make_creditor(kind)
        set_policy(creditor, partner, min_balance=10000, days_past_due=14, days_after_final_reminder=10,
                   keep_payments=keep_payments)
        db.session.commit()
    return creditor


def overdue(app, creditor, *, days_overdue: int = 30, final_days_ago: int | None = 20, lines: int = 2, **fields):
    """A bill due `days_overdue` days ago, with a final reminder `final_days_ago` days ago (None: none)."""
    today = local_today(creditor.country, utcnow())
    with app.test_request_context():
        invoice = make_invoice(creditor, lines=lines,
                               issue_date=(today - timedelta(days=days_overdue + 14)).isoformat(),
                               due_date=(today - timedelta(days=days_overdue)).isoformat(), **fields)
        record_reminder(invoice, channel="sms", sent_at=utcnow() - timedelta(days=max(days_overdue - 5, 0)),
                        final=False, actor="api")
        if final_days_ago is not None:
            record_reminder(invoice, channel="letter", sent_at=utcnow() - timedelta(days=final_days_ago), final=True,
                            actor="api")
        db.session.commit()
    return invoice


def deliver(app, now=None):
    """Run the outbox dispatcher once (everything due now, or at `now`)."""
    with app.app_context():
        return run_once(now=now)
