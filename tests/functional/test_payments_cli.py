"""`flask payments`: a creditor's choice of providers and methods, and what its bills then show."""

from datetime import UTC

from app.extensions import db
from app.payments.models import CreditorGateway
from app.payments.providers import pay_options
from tests.factories import make_creditor, make_invoice


def run(app, *args):
    return app.test_cli_runner().invoke(args=["payments", *args])


def test_offer_list_and_withdraw(app, session):
    creditor = make_creditor("NO")
    db.session.commit()  # a savepoint: a failing command rolls back to here
    result = run(app, "offer", creditor.slug, "stripe", "card,vipps,ideal,klarna")
    assert result.exit_code == 0, result.output
    choice = db.session.query(CreditorGateway).filter_by(creditor_id=creditor.id).one()
    assert (choice.provider, choice.methods, choice.flow) == ("stripe", ["card", "vipps", "ideal", "klarna"], "element")

    listed = run(app, "gateways", creditor.slug)
    assert "stripe, element: card, vipps, ideal, klarna (no keys)" in listed.output
    # no Stripe keys on this instance: the simulator plays what fits a NOK bill in Norway
    assert "simulator (test mode): card, vipps, klarna" in listed.output
    with app.app_context():
        assert [o.methods for o in pay_options(creditor, "NOK", "NO")] == [("card", "vipps", "klarna")]

    assert run(app, "offer", creditor.slug, "adyen", "card", "--flow", "link").exit_code == 0
    assert run(app, "withdraw", creditor.slug, "stripe").exit_code == 0
    assert run(app, "withdraw", creditor.slug, "stripe").exit_code == 1
    listed = run(app, "gateways", creditor.slug)
    assert "stripe" not in listed.output.split("show:")[0] and "adyen, link: card" in listed.output


def test_bad_choices_are_refused_and_change_nothing(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    for args, problem in (
        (("paypalish", "card"), "unknown provider"),
        (("stripe", "card,bitcoin"), "unknown methods bitcoin"),
        (("adyen", "card", "--flow", "element"), "adyen offers session, link"),
        (("stripe", ","), "choose at least one method"),
    ):
        result = run(app, "offer", creditor.slug, *args)
        assert result.exit_code == 1 and problem in result.output, result.output
    assert db.session.query(CreditorGateway).filter_by(creditor_id=creditor.id).count() == 0
    assert "No creditor" in run(app, "offer", "nobody", "stripe", "card").output


def test_refunds_due_lists_overpayments(app, session):
    from datetime import datetime

    from app.payments.services import settle

    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    assert "nothing to refund" in run(app, "refunds-due", creditor.slug).output
    settle(invoice.id, provider="bank_transfer", payment_id="acct:1", amount=invoice.balance + 10_000,
           currency=invoice.currency, method="bank_transfer", received_at=datetime(2026, 11, 2, tzinfo=UTC),
           actor="test")
    db.session.commit()
    output = run(app, "refunds-due", creditor.slug).output
    assert f"invoice {invoice.number}: NOK" in output and "100.00 of a bank_transfer payment acct:1" in output
