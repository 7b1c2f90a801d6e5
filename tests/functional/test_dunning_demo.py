"""The demo's reminders: each demo creditor gets the lawful default plan of its country (Norway, Germany,
"No rules"), and the README's walk works: Kari's bill goes from the nudge to the SMS reminder to the
inkassovarsel by letter to the hand-off after its deadline; Ingrid pays after her SMS and nothing more
goes to her; Ola's bill waits while his question does."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.billing.services import find_invoice
from app.creditors.models import Creditor
from app.debt_collection.worker import run as hand_off_run
from app.demo import (
    DunningWalk,
    demo_invoice_numbers,
    dunning_walk,
    load_back_office_demo,
    load_collection_demo,
    load_demo,
    load_dunning_demo,
)
from app.dunning import services, worker
from app.dunning.models import Notice
from app.dunning.settings import consumer_default_notice, languages_of
from app.extensions import db
from app.payments.services import record_manual_payment

LOADED = date(2026, 12, 6)  # a Sunday, as the README's walk


def notices(invoice) -> list[tuple[int, str, str, int]]:
    return [(n.position, n.kind, n.channel, n.fee) for n in db.session.scalars(
        select(Notice).where(Notice.invoice_id == invoice.id).order_by(Notice.position))]


def test_the_demo_creditors_get_lawful_plans_and_the_readme_walk_works(app, session):
    with app.test_request_context():
        load_demo(LOADED)
        assert load_dunning_demo() == 3
        load_back_office_demo(lambda _country: LOADED)
        load_collection_demo()
        db.session.commit()
        assert load_dunning_demo() == 0  # idempotent
        walk = dunning_walk()
    creditors = {c.slug: c for c in db.session.scalars(select(Creditor))}
    expected = (("fjordlys", "NO", ["nb", "en", "de"]), ("lindenau", "DE", ["de", "en", "nb"]),
                ("shamrock", "none", ["en", "nb", "de"]))
    for slug, jurisdiction, languages in expected:
        plan = services.default_plan(creditors[slug].id)
        assert (plan.name, plan.jurisdiction) == ("standard", jurisdiction)
        assert languages_of(creditors[slug]) == languages
    assert consumer_default_notice(creditors["lindenau"]) and not consumer_default_notice(creditors["fjordlys"])
    assert walk == DunningWalk(date(2026, 12, 8), date(2026, 12, 14), date(2026, 12, 28), date(2027, 1, 12),
                               date(2027, 1, 27))

    fjordlys = creditors["fjordlys"]
    numbers = demo_invoice_numbers()
    kari, ingrid, ola = (find_invoice(fjordlys, numbers[role][1]) for role in ("ten_lines", "partly_paid", "overdue"))
    worker.run(on=walk.nudge, slug="fjordlys")
    worker.run(on=walk.other_nudge, slug="fjordlys")
    db.session.expire_all()
    assert notices(ingrid) == [(1, "pre_due", "sms", 0)]
    record_manual_payment(ingrid, ingrid.balance, received_on=LOADED, method="bank_transfer", key="demo-pay",
                          actor="cli")
    db.session.commit()
    for day in (walk.reminder, walk.warning, date(2027, 2, 15)):
        worker.run(on=day, slug="fjordlys")
    db.session.expire_all()
    assert notices(kari) == [(1, "pre_due", "sms", 0), (2, "reminder", "sms", 3500),
                             (3, "collection_warning", "letter", 3500)]
    assert notices(ingrid) == [(1, "pre_due", "sms", 0)]  # paid after the SMS: nothing more
    assert notices(ola) == []  # his question waits for an answer

    with app.app_context():
        early = hand_off_run(lambda _country: date(2027, 1, 26), on=date(2027, 1, 26))
        report = hand_off_run(lambda _country: walk.hand_off, on=walk.hand_off)
    assert not early.handed_off
    assert [number for number, _case in report.handed_off] == [kari.number]
