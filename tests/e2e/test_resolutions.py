"""Promise, more time, instalments and dispute from a bill link, in Chromium, in every language.

Each test makes its own creditor and bill in the live server's database (the demo bills stay as
they are for the other tests), follows the signed link like a customer, uses the keyboard where
a customer would, checks every page with axe and for sideways scrolling, and then checks the
invoice, the pause rule, and the e-mails delivered over SMTP by the outbox dispatcher."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.billing.models import Invoice
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.extensions import db
from app.models import utcnow
from app.resolutions.models import Resolution
from app.resolutions.services import dunning_for, resolutions_for
from tests.e2e.flows import PDF, checked, deliver, t
from tests.e2e.test_payments import new_bill

CASES = [("en", "mobile"), ("nb", "mobile"), ("de", "mobile"), ("en", "desktop")]
RULES = {"deferral_fee": 4900, "plan_fee": 9900, "plan_interest_bp": 1200, "plan_min_instalment": 5000}






def start(live_server, open_page, locale, viewport):
    link, invoice_id, slug = new_bill(live_server, "NO", default_locale="en")
    with live_server.app.app_context():
        creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
        for column, value in RULES.items():
            setattr(creditor, column, value)
        db.session.commit()
        db.session.remove()
    page, _watch = open_page(viewport, language=locale)
    page.goto(link)
    page.goto(page.url.split("?")[0] + f"?lang={locale}")  # the language switch, as a customer would use it
    return page, invoice_id


def state(live_server, invoice_id: int):
    with live_server.app.test_request_context():
        invoice = db.session.get(Invoice, invoice_id)
        today = local_today(invoice.creditor.country, utcnow())
        found = (invoice.status, invoice.due_date, invoice.total,
                 [(r.kind, r.status) for r in resolutions_for(invoice_id)], dunning_for(invoice, today))
        db.session.remove()
    return found




def follow_option(live_server, page, locale: str, label: str) -> None:
    """Reach the option on the bill page with the keyboard: focus its link and press Enter."""
    link = page.get_by_role("link", name=t(live_server.app, locale, label))
    link.first.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")


@pytest.mark.parametrize(("locale", "viewport"), CASES)
def test_promise_to_pay(live_server, open_page, locale, viewport):
    page, invoice_id = start(live_server, open_page, locale, viewport)
    follow_option(live_server, page, locale, "Pay on a later date")
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Promise to pay on a later date"))
    checked(page, f"promise form ({locale}, {viewport})")
    promised = local_today("NO", utcnow()) + timedelta(days=7)
    page.fill("#date", promised.isoformat())
    with page.expect_navigation():
        page.keyboard.press("Enter")  # submits the form, as a customer on a keyboard would
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Please confirm your promise"))
    checked(page, f"promise confirmation ({locale}, {viewport})")
    page.get_by_role("button", name=t(live_server.app, locale, "Confirm my promise")).click()
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Your promise to pay"))
    checked(page, f"promise page ({locale}, {viewport})")
    _status, _due, _total, resolutions, dunning = state(live_server, invoice_id)
    assert resolutions == [("promise", "active")] and dunning.reason == "promise"
    assert dunning.until == promised + timedelta(days=3)
    with page.expect_download() as download:
        page.get_by_role("link", name=t(live_server.app, locale, "Add to my calendar (.ics)")).click()
    assert download.value.suggested_filename == "promise-to-pay.ics"
    [mail] = deliver(live_server, invoice_id)
    assert mail["Content-Language"] == locale
    assert any(part.get_filename() == "promise-to-pay.ics" for part in mail.iter_attachments())


@pytest.mark.parametrize(("locale", "viewport"), CASES)
def test_more_time(live_server, open_page, locale, viewport):
    page, invoice_id = start(live_server, open_page, locale, viewport)
    _status, due, total, _r, _d = state(live_server, invoice_id)
    follow_option(live_server, page, locale, "Ask for more time")
    checked(page, f"deferral form ({locale}, {viewport})")
    page.fill("#date", "2000-01-01")
    page.get_by_role("button", name=t(live_server.app, locale, "Continue")).click()
    expect(page.locator("#date-error")).to_be_visible()
    checked(page, f"deferral form with an error ({locale}, {viewport})")
    new_due = due + timedelta(days=10)
    page.fill("#date", new_due.isoformat())
    page.get_by_role("button", name=t(live_server.app, locale, "Continue")).click()
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Please confirm your new due date"))
    checked(page, f"deferral confirmation ({locale}, {viewport})")
    page.get_by_role("button", name=t(live_server.app, locale, "Confirm the new due date")).click()
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Your new due date"))
    _status, due_after, total_after, resolutions, dunning = state(live_server, invoice_id)
    assert (due_after, total_after, resolutions) == (new_due, total + 4900, [("deferral", "active")])
    assert dunning.reason == "deferral"
    assert len(deliver(live_server, invoice_id)) == 1


@pytest.mark.parametrize(("locale", "viewport"), CASES)
def test_instalments(live_server, open_page, locale, viewport):
    page, invoice_id = start(live_server, open_page, locale, viewport)
    follow_option(live_server, page, locale, "Pay in instalments")
    checked(page, f"instalment offers ({locale}, {viewport})")
    page.locator("#months-2").check()
    page.get_by_role("button", name=t(live_server.app, locale, "See the plan")).click()
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Please check your instalment plan"))
    expect(page.locator("table.schedule tbody tr")).to_have_count(2)
    checked(page, f"instalment plan to accept ({locale}, {viewport})")
    page.get_by_role("button", name=t(live_server.app, locale, "Accept this plan")).click()
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Your instalment plan"))
    checked(page, f"instalment plan page ({locale}, {viewport})")
    _status, _due, _total, resolutions, dunning = state(live_server, invoice_id)
    assert resolutions == [("plan", "active")] and dunning.reason == "plan"
    page.get_by_role("link", name=t(live_server.app, locale, "Back to the bill")).first.click()
    expect(page.get_by_text(t(live_server.app, locale, "What you have arranged"))).to_be_visible()
    checked(page, f"bill with a plan ({locale}, {viewport})")
    # the first instalment is what the pay button takes
    with live_server.app.app_context():
        plan = db.session.query(Resolution).filter_by(invoice_id=invoice_id).one()
        first = plan.instalments[0].amount
        db.session.remove()
    page.locator("form.pay button[name=provider]").first.click()
    page.wait_for_url("**/simulator/**")
    from app.payments.models import PaymentAttempt

    with live_server.app.app_context():
        assert db.session.query(PaymentAttempt.amount).filter_by(invoice_id=invoice_id).scalar() == first
        db.session.remove()
    [mail] = deliver(live_server, invoice_id)  # the plan with its schedule
    assert mail["Content-Language"] == locale


@pytest.mark.parametrize(("locale", "viewport"), CASES)
def test_dispute(live_server, open_page, locale, viewport, tmp_path):
    page, invoice_id = start(live_server, open_page, locale, viewport)
    follow_option(live_server, page, locale, "Dispute the bill")
    checked(page, f"dispute form ({locale}, {viewport})")
    page.get_by_role("button", name=t(live_server.app, locale, "Send my dispute")).click()
    expect(page.locator("#message-error")).to_be_visible()
    checked(page, f"dispute form with errors ({locale}, {viewport})")
    page.get_by_label(t(live_server.app, locale, "One or more lines")).check()
    page.locator("input[name=lines]").first.check()
    page.get_by_label(t(live_server.app, locale, "I have already paid")).check()
    page.fill("#message", "Betalt 1. november <script>alert(1)</script>")
    proof = tmp_path / "kvittering.pdf"
    proof.write_bytes(PDF)
    page.set_input_files("#attachment", str(proof))
    page.get_by_role("button", name=t(live_server.app, locale, "Send my dispute")).click()
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Your dispute"))
    expect(page.get_by_text("<script>alert(1)</script>", exact=False)).to_be_visible()
    checked(page, f"dispute page ({locale}, {viewport})")
    status, _due, _total, resolutions, dunning = state(live_server, invoice_id)
    assert (status, resolutions, dunning.reason) == ("disputed", [("dispute", "open")], "dispute")
    page.get_by_role("link", name=t(live_server.app, locale, "Back to the bill")).first.click()
    undisputed = t(live_server.app, locale, "The part of the bill you do not dispute: %(amount)s.", amount="")
    expect(page.locator("#pay-now").get_by_text(undisputed[:30])).to_be_visible()
    checked(page, f"bill with a dispute ({locale}, {viewport})")
    mails = deliver(live_server, invoice_id)
    assert sorted(m["To"] for m in mails) == ["help@example.test", "kari@example.test"]
