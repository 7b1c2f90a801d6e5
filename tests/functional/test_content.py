"""Content blocks (issue 18, items 1-4): a content editor writes a block in the console (texts per
language, checked and sanitised; an image checked by its content), the bill page and the receipt show
it to the customers it targets, the click goes through our signed redirect to the block's own target
only, "I am interested" reaches the creditor as `lead.created`, "no offers, please" is remembered, and
the console is closed to other roles and other creditors."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from app.audit import AuditEntry
from app.billing.models import Customer
from app.content import services as content
from app.content.models import Block, Exposure, Lead
from app.creditors.models import Creditor
from app.events.models import CreditorEvent
from app.extensions import db
from tests.factories import creditor_today, make_creditor, make_invoice
from tests.functional.agents import CSRF, EN, enrol, make_agent
from tests.functional.helpers import open_bill

NB = {"Accept-Language": "nb"}


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


def sign_in(app, client, creditor, role="content_editor", email="ida@example.test"):
    agent = make_agent(app, creditor, email, role, name="Ida Innhold")
    enrol(client, email)
    return agent


def form_post(client, page, path, data=None, **kw):
    csrf = CSRF.search(client.get(page, headers=EN).text).group(1)
    return client.post(path, data={"csrf_token": csrf, **(data or {})}, headers=EN, **kw)


def block_form(**changes):
    form = {"name": "Fibre offer", "kind": "offer", "placements": ["bill", "receipt"], "priority": "5",
            "action": "link", "target_url": "https://fibre.example.test/offer",
            "en_title": "Faster internet", "en_body": "Get **fibre** now.\n\n- no fee\n- 12 months",
            "en_cta": "See the offer",
            "nb_title": "Raskere internett", "nb_body": "Få **fiber** nå.", "nb_cta": "Se tilbudet",
            "de_title": "", "de_body": "", "de_cta": ""}
    form.update(changes)
    return form


def create(client, creditor, **changes):
    page = f"/backoffice/console/{creditor.id}/content/new"
    return form_post(client, page, page, block_form(**changes))


def png(size=(1600, 900)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 60, 120)).save(out, "PNG")
    return out.getvalue()


def content_urls(creditor_id: int) -> list[tuple[str, str]]:
    base = f"/backoffice/console/{creditor_id}/content"
    return [("GET", base), ("POST", f"{base}/settings"), ("GET", f"{base}/new"), ("POST", f"{base}/new"),
            ("GET", f"{base}/blk_x"), ("POST", f"{base}/blk_x"), ("POST", f"{base}/blk_x/stop"),
            ("POST", f"{base}/blk_x/image"), ("POST", f"{base}/blk_x/variants"),
            ("POST", f"{base}/blk_x/variants/1/stop"), ("GET", f"{base}/leads")]


# --- who may write content --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_agents_get_403_on_every_content_route(app, client, creditor, role):
    sign_in(app, client, creditor, role)
    csrf = CSRF.search(client.get("/backoffice/", headers=EN).text).group(1)
    for method, url in content_urls(creditor.id):
        answer = client.open(url, method=method, data={"csrf_token": csrf}, headers=EN)
        assert answer.status_code == 403, f"{method} {url} answered {answer.status_code}"


def test_another_creditors_content_is_404(app, client, creditor):
    other = make_creditor("DE")
    db.session.commit()
    sign_in(app, client, creditor)
    csrf = CSRF.search(client.get(f"/backoffice/console/{creditor.id}/content", headers=EN).text).group(1)
    for method, url in content_urls(other.id):
        answer = client.open(url, method=method, data={"csrf_token": csrf}, headers=EN)
        assert answer.status_code == 404, f"{method} {url} answered {answer.status_code}"


def test_a_content_editor_sees_only_the_content_and_a_creditor_admin_too(app, client, creditor):
    sign_in(app, client, creditor)
    home = client.get("/backoffice/", headers=EN)
    assert home.status_code == 303
    assert client.get("/backoffice/console", headers=EN).headers["Location"].endswith(
        f"/console/{creditor.id}/content")
    page = client.get(f"/backoffice/console/{creditor.id}/content", headers=EN)
    assert page.status_code == 200 and "Content blocks" in page.text and ">Brand<" not in page.text
    assert client.get(f"/backoffice/console/{creditor.id}", headers=EN).status_code == 403  # the brand: not theirs
    admin = app.test_client()
    sign_in(app, admin, creditor, "creditor_admin", "kari@example.test")
    assert admin.get(f"/backoffice/console/{creditor.id}/content", headers=EN).status_code == 200


# --- writing a block ----------------------------------------------------------------------------------


def test_a_block_is_written_audited_and_shown_in_the_customers_language(app, client, creditor):
    invoice = make_invoice(creditor)
    db.session.commit()
    agent = sign_in(app, client, creditor)
    answer = create(client, creditor)
    assert answer.status_code == 303, answer.text
    block = db.session.scalar(select(Block).where(Block.creditor_id == creditor.id))
    assert block.kind == "offer" and sorted(block.variants[0].texts) == ["en", "nb"]
    assert "<strong>fibre</strong>" in block.variants[0].texts["en"]["html"]
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.agent_id == agent.id,
                                                       AuditEntry.action == "console_content_created"))
    assert audit.record_id == block.public_id and audit.detail["languages"] == ["en", "nb"]

    customer = app.test_client()
    path = open_bill(customer, app, invoice)
    nb = customer.get(path, headers=NB)
    assert "Raskere internett" in nb.text and "Faster internet" not in nb.text
    assert "<strong>fiber</strong>" in nb.text
    customer.get(path + "?lang=en")
    en = customer.get(path)
    assert "Faster internet" in en.text
    # a German customer: no German text, no block
    customer.get(path + "?lang=de")
    assert "Raskere" not in customer.get(path).text and "Faster" not in customer.get(path).text


def test_a_block_for_one_channel_shows_to_customers_who_came_by_it_also_from_the_page_cache(app, client,
                                                                                            creditor):
    """The grant keeps the channel of the link the customer came by: the page (the view, then the gate
    from the cache) differs by it, as the cache's key does."""
    invoice = make_invoice(creditor)
    db.session.commit()
    sign_in(app, client, creditor)
    assert create(client, creditor, kind="information", channels=["sms"]).status_code == 303
    block = db.session.scalar(select(Block).where(Block.creditor_id == creditor.id))
    assert block.targeting["channels"] == ["sms"]
    assert create(client, creditor, name="Bad", channels=["fax"]).status_code == 422

    by_sms, by_email = app.test_client(), app.test_client()
    sms_path = open_bill(by_sms, app, invoice, channel="sms")
    email_path = open_bill(by_email, app, invoice, channel="email")
    assert sms_path == email_path
    for _ in range(2):  # rendered by the view, then answered from the page cache
        assert "Raskere internett" in by_sms.get(sms_path, headers=NB).text
        assert "Raskere internett" not in by_email.get(email_path, headers=NB).text


@pytest.mark.parametrize(("changes", "field"), [
    ({"en_title": "<script>alert(1)</script>"}, "en_title"),
    ({"en_body": "Hi <img src=x onerror=alert(1)>"}, "en_body"),
    ({"en_body": "[click](javascript:alert(1))"}, "en_body"),
    ({"nb_cta": "<b>Se</b>"}, "nb_cta"),
    ({"target_url": "javascript:alert(1)"}, "target_url"),
    ({"target_url": "http://fibre.example.test/"}, "target_url"),
    ({"name": ""}, "name"),
    ({"kind": "advert"}, "kind"),
    ({"ends_on": "31.02.2026"}, "ends_on"),
    ({"amount_min": "abc"}, "amount_min"),
    ({"countries": "Norway"}, "countries"),
    ({"en_title": "", "nb_title": "", "en_body": "", "nb_body": "", "en_cta": "", "nb_cta": ""}, "texts"),
])
def test_script_and_html_in_the_fields_are_refused_next_to_the_field_and_nothing_is_saved(
        app, client, creditor, changes, field):
    sign_in(app, client, creditor)
    version = creditor.content_version
    answer = create(client, creditor, **changes)
    assert answer.status_code == 422
    assert f'id="f-{field}-error"' in answer.text
    assert "Nothing was saved" in answer.text
    assert "<script>alert" not in answer.text  # shown back escaped
    assert db.session.scalar(select(Block).where(Block.creditor_id == creditor.id)) is None
    db.session.expire_all()
    assert db.session.get(Creditor, creditor.id).content_version == version


def test_an_upload_that_is_not_an_image_is_refused_and_an_image_is_resized(app, client, creditor):
    agent = sign_in(app, client, creditor)
    create(client, creditor)
    block = db.session.scalar(select(Block).where(Block.creditor_id == creditor.id))
    page = f"/backoffice/console/{creditor.id}/content/{block.public_id}"
    for name, data in [("x.png", b"<script>alert(1)</script>"), ("x.png", png()[:200]),
                       ("x.jpg", b"\xff\xd8\xff" + b"0" * 100)]:
        answer = form_post(client, page, f"{page}/image", {"image": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")
        assert answer.status_code == 422 and "PNG or JPEG" in answer.text
    db.session.expire_all()
    assert db.session.get(Block, block.id).image_version is None
    answer = form_post(client, page, f"{page}/image", {"image": (io.BytesIO(png()), "big.png")},
                       content_type="multipart/form-data")
    assert answer.status_code == 303
    db.session.expire_all()
    saved = db.session.get(Block, block.id)
    served = client.get(f"/c/img/{saved.public_id}/{saved.image_version}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    with Image.open(io.BytesIO(served.data)) as image:
        assert image.width <= content.IMAGE_MAX_WIDTH and image.height <= content.IMAGE_MAX_HEIGHT
    assert len(list(db.session.scalars(select(AuditEntry).where(
        AuditEntry.agent_id == agent.id, AuditEntry.action == "console_content_image_refused")))) == 3


# --- the customer's side -------------------------------------------------------------------------------


def _ref(html: str, kind: str) -> str:
    pattern = {"click": r'href="/c/([^"/]+)"', "seen": r'src="/c/([^"/]+)/seen.gif"',
               "interest": r'action="/c/([^"/]+)/interest"'}[kind]
    return re.search(pattern, html).group(1)


def test_the_click_redirect_goes_only_to_the_blocks_own_target(app, client, creditor):
    invoice = make_invoice(creditor)
    db.session.commit()
    sign_in(app, client, creditor)
    create(client, creditor)
    customer = app.test_client()
    page = customer.get(open_bill(customer, app, invoice), headers=EN).text
    ref = _ref(page, "click")
    answer = customer.get(f"/c/{ref}")
    assert answer.status_code == 303 and answer.headers["Location"] == "https://fibre.example.test/offer"
    # any other target: a forged or altered reference, a target in the query: the neutral page
    for bad in (ref[:-2] + ("AA" if not ref.endswith("AA") else "BB"), "x", ref + "x"):
        refused = customer.get(f"/c/{bad}")
        assert refused.status_code == 404 and "Location" not in refused.headers
    follows = customer.get(f"/c/{ref}?next=https://evil.example.test/&url=https://evil.example.test/")
    assert follows.headers["Location"] == "https://fibre.example.test/offer"
    signed_other = content.URLSafeSerializer("wrong key", salt=content.SALT).dumps([1, 1, invoice.id, "b"])
    assert customer.get(f"/c/{signed_other}").status_code == 404
    exposure = db.session.scalar(select(Exposure).where(Exposure.invoice_id == invoice.id))
    assert exposure.clicks == 2


def test_impressions_are_counted_once_a_day_without_defeating_the_page_cache(app, client, creditor):
    invoice = make_invoice(creditor)
    db.session.commit()
    sign_in(app, client, creditor)
    create(client, creditor, cap_days="1")
    customer = app.test_client()
    path = open_bill(customer, app, invoice)
    first = customer.get(path, headers=EN).text
    second = customer.get(path, headers=EN).text
    assert _ref(first, "seen") == _ref(second, "seen")  # the same cached page
    ref = _ref(first, "seen")
    for _ in range(2):
        pixel = customer.get(f"/c/{ref}/seen.gif")
        assert pixel.status_code == 200 and pixel.mimetype == "image/gif"
    assert customer.get("/c/forged/seen.gif").status_code == 200  # the same answer
    exposure = db.session.scalar(select(Exposure).where(Exposure.invoice_id == invoice.id))
    assert exposure.days_seen == 1 and exposure.first_seen_at is not None
    customer_row = db.session.get(Customer, invoice.customer_id)
    db.session.refresh(customer_row)
    block = db.session.scalar(select(Block).where(Block.creditor_id == creditor.id))
    assert customer_row.content_seen[str(block.id)][1] == 1
    # the cap (one day) is reached: tomorrow's page leaves the block out
    audience = content.audience_for(invoice, "bill", "en", creditor_today("NO") + timedelta(days=1))
    assert content.blocks_for(invoice, audience, creditor_today("NO") + timedelta(days=1)) == []


def test_i_am_interested_records_a_lead_that_reaches_the_creditor(app, client, creditor):
    invoice = make_invoice(creditor)
    db.session.commit()
    sign_in(app, client, creditor)
    create(client, creditor, action="interest", target_url="", en_cta="I am interested", nb_cta="Jeg er interessert")
    customer = app.test_client()
    page = customer.get(open_bill(customer, app, invoice), headers=EN).text
    ref = _ref(page, "interest")
    csrf = CSRF.search(page).group(1)
    assert customer.post(f"/c/{ref}/interest", data={}).status_code == 400  # CSRF
    answer = customer.post(f"/c/{ref}/interest", data={"csrf_token": csrf})
    assert answer.status_code == 303
    assert "will contact you" in customer.get(answer.headers["Location"], headers=EN).text
    customer.post(f"/c/{ref}/interest", data={"csrf_token": csrf})  # twice: one lead
    leads = list(db.session.scalars(select(Lead).where(Lead.invoice_id == invoice.id)))
    assert len(leads) == 1
    event = db.session.scalar(select(CreditorEvent).where(CreditorEvent.creditor_id == creditor.id,
                                                          CreditorEvent.type == "lead.created"))
    assert event.payload["lead"]["id"] == leads[0].public_id
    assert event.payload["customer"]["external_ref"] == invoice.customer.external_ref
    listed = client.get(f"/backoffice/console/{creditor.id}/content/leads", headers=EN)
    assert invoice.number in listed.text and invoice.customer.name not in listed.text


def test_no_offers_please_is_remembered_and_reversible(app, client, creditor):
    invoice = make_invoice(creditor)
    db.session.commit()
    sign_in(app, client, creditor)
    create(client, creditor)
    create(client, creditor, name="Opening hours", kind="information", action="none", target_url="",
           en_title="We are open on Sundays", en_cta="", nb_title="Åpent på søndager", nb_cta="")
    customer = app.test_client()
    path = open_bill(customer, app, invoice)
    page = customer.get(path, headers=EN).text
    assert "Faster internet" in page and "No offers, please" in page
    answer = customer.post(f"/b/{invoice.public_id}/offers", data={"csrf_token": CSRF.search(page).group(1),
                                                                   "offers": "off"})
    assert answer.status_code == 303
    page = customer.get(path, headers=EN).text
    assert "Faster internet" not in page and "We are open on Sundays" in page and "Show offers again" in page
    assert db.session.get(Customer, invoice.customer_id).no_offers is True
    customer.post(f"/b/{invoice.public_id}/offers", data={"csrf_token": CSRF.search(page).group(1), "offers": "on"})
    assert "Faster internet" in customer.get(path, headers=EN).text
    stranger = app.test_client()  # without the bill's grant: nothing changes
    stranger.get("/")
    assert stranger.post(f"/b/{invoice.public_id}/offers", data={"offers": "off"}).status_code in (400, 404)


def test_an_overdue_bill_shows_information_only_and_the_receipt_its_own_blocks(app, client, creditor):
    today = creditor_today("NO")
    invoice = make_invoice(creditor, due_date=(today - timedelta(days=3)).isoformat())
    db.session.commit()
    sign_in(app, client, creditor)
    create(client, creditor)
    create(client, creditor, name="Tips", kind="engagement", action="none", target_url="",
           en_title="Set up e-invoice", en_cta="", nb_title="eFaktura", nb_cta="")
    create(client, creditor, name="Info", kind="information", action="none", target_url="",
           en_title="New prices from January", en_cta="", nb_title="Nye priser", nb_cta="")
    customer = app.test_client()
    page = customer.get(open_bill(customer, app, invoice), headers=EN).text
    assert "New prices from January" in page
    assert "Faster internet" not in page and "Set up e-invoice" not in page


def test_a_test_block_shows_on_test_bills_only(app, client, creditor):
    live, test = make_invoice(creditor), make_invoice(creditor, livemode=False)
    content.create_block(creditor, {**content_given(), "name": "Test"}, livemode=False)
    db.session.commit()
    customer = app.test_client()
    assert "Faster internet" not in customer.get(open_bill(customer, app, live), headers=EN).text
    other = app.test_client()
    assert "Faster internet" in other.get(open_bill(other, app, test), headers=EN).text


def content_given(**changes):
    given = {"name": "Fibre offer", "kind": "offer", "placements": ["bill"], "priority": 0, "action": "link",
             "target_url": "https://fibre.example.test/offer",
             "texts": {"en": {"title": "Faster internet", "body": "Now.", "cta": "See"}}}
    given.update(changes)
    return given


def test_a_stopped_block_disappears_at_the_next_request_and_its_link_stops(app, client, creditor):
    invoice = make_invoice(creditor)
    db.session.commit()
    sign_in(app, client, creditor)
    create(client, creditor)
    block = db.session.scalar(select(Block).where(Block.creditor_id == creditor.id))
    customer = app.test_client()
    path = open_bill(customer, app, invoice)
    ref = _ref(customer.get(path, headers=EN).text, "click")
    page = f"/backoffice/console/{creditor.id}/content/{block.public_id}"
    assert form_post(client, page, f"{page}/stop", {"stop": "1"}).status_code == 303
    assert "Faster internet" not in customer.get(path, headers=EN).text
    assert customer.get(f"/c/{ref}").status_code == 404


def test_a_variant_is_added_stopped_and_results_shown(app, client, creditor):
    sign_in(app, client, creditor)
    create(client, creditor)
    block = db.session.scalar(select(Block).where(Block.creditor_id == creditor.id))
    page = f"/backoffice/console/{creditor.id}/content/{block.public_id}"
    answer = form_post(client, page, f"{page}/variants", {"variant_name": "B", "weight": "3",
                                                          "v_en_title": "Fibre, faster", "v_en_cta": "Look"})
    assert answer.status_code == 303
    db.session.expire_all()
    block = db.session.get(Block, block.id)
    assert [v.name for v in block.variants] == ["A", "B"]
    shown = client.get(page, headers=EN)
    assert shown.status_code == 200 and "Variants and results" in shown.text
    bad = form_post(client, page, f"{page}/variants", {"variant_name": "B", "weight": "0", "v_en_title": "<b>x</b>"})
    assert bad.status_code == 422
    stop = form_post(client, page, f"{page}/variants/{block.variants[1].id}/stop", {"stop": "1"})
    assert stop.status_code == 303
    db.session.expire_all()
    assert db.session.get(Block, block.id).variants[1].stopped_at is not None


def test_the_receipt_shows_its_own_blocks_and_no_offer_after_a_reminder(app, client, creditor):
    from app.billing.models import Reminder
    from app.payments.models import Payment
    from tests.functional.test_payments import choose, start
    from tests.functional.test_receipts import local

    invoice = make_invoice(creditor)
    db.session.commit()
    for given in (content_given(name="Thanks", kind="information", placements=["receipt"], action="none",
                                target_url=None, texts={"en": {"title": "Thank you for paying", "body": "",
                                                               "cta": ""}}),
                  content_given(placements=["receipt"]),
                  content_given(name="Page only", kind="information", action="none", target_url=None,
                                texts={"en": {"title": "Only on the bill page", "body": "", "cta": ""}})):
        content.create_block(creditor, given)
    db.session.commit()
    customer = app.test_client()
    url = open_bill(customer, app, invoice)
    hosted = local(app, start(customer, url).headers["Location"])
    choose(customer, hosted, "succeed")
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
    page = customer.get(f"{url}/receipts/{payment.public_ref}", headers=EN).text
    assert "Thank you for paying" in page and "Faster internet" in page and "Only on the bill page" not in page
    # a bill that had a reminder: its customer was in difficulty, the receipt offers nothing
    db.session.add(Reminder(invoice_id=invoice.id, channel="sms", sent_at=invoice.created_at))
    db.session.commit()
    page = customer.get(f"{url}/receipts/{payment.public_ref}", headers=EN).text
    assert "Thank you for paying" in page and "Faster internet" not in page
