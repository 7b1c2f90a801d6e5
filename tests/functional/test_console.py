"""The creditor console (issue 17, item 1): who may use it (a creditor admin; other roles 403, another
creditor's 404), the brand with its checks (logo by content, colours against WCAG AA), providers' keys
stored encrypted and shown masked with a check against the provider, the rules and the collection
policy, API keys (named, revocable, last use), and the audit entries of every change."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from sqlalchemy import select, text

from app.audit import AuditEntry
from app.creditors.models import ApiKey, Creditor
from app.crypto import decrypt
from app.debt_collection.models import Policy
from app.debt_collection.partners import add_partner
from app.extensions import db
from app.outbox.email import Notice, notice_email
from app.payments.models import CreditorGateway
from tests.factories import make_creditor
from tests.functional.agents import CSRF, EN, enrol, make_agent
from tests.support.adyen_server import AdyenServer
from tests.support.localstripe_server import LocalStripe

STRIPE_SECRET = "sk_test_" + "s3cr3t" * 5 + "WXYZ"
WEBHOOK_SECRET = "whsec_" + "h00k" * 8 + "ABCD"
ADYEN_KEY = "console_adyen_api_key"


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def gateways(app, monkeypatch):
    """No instance keys, and no gateways kept from another test."""
    monkeypatch.setitem(app.config, "PAYMENT_GATEWAYS", {})
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)
    yield app.config["PAYMENT_GATEWAYS"]
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)


def sign_in(app, client, creditor, role="creditor_admin", email="kari@example.test"):
    agent = make_agent(app, creditor, email, role, name="Kari Konsoll")
    enrol(client, email)
    return agent


def form_post(client, page, path, data=None, **kw):
    """POST a console form with the CSRF token of `page`."""
    csrf = CSRF.search(client.get(page, headers=EN).text).group(1)
    return client.post(path, data={"csrf_token": csrf, **(data or {})}, headers=EN, **kw)


def entries(agent, action):
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.agent_id == agent.id,
                                                             AuditEntry.action == action).order_by(AuditEntry.id)))


def brand_form(creditor, **changes):
    fields = {"brand_primary": creditor.brand_primary, "brand_accent": creditor.brand_accent,
              "email_sender_name": "", "email_reply_to": "", "support_email": creditor.support_email or "",
              "support_phone": creditor.support_phone or "", "support_url": "", "support_hours":
              creditor.support_hours or "", "callback_hours": "", "legal_name": creditor.legal_name or "",
              "org_number": "",
              "address": creditor.address or ""}
    return {**fields, **changes}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (20, 60, 120)).save(out, "PNG")
    return out.getvalue()


def console_urls(creditor_id: int, key_id: int = 1) -> list[tuple[str, str]]:
    base = f"/backoffice/console/{creditor_id}"
    return [("GET", base), ("POST", base), ("POST", f"{base}/logo"), ("GET", f"{base}/payments"),
            ("POST", f"{base}/payments/stripe"), ("POST", f"{base}/payments/stripe/check"),
            ("POST", f"{base}/payments/stripe/forget"), ("GET", f"{base}/rules"), ("POST", f"{base}/rules"),
            ("GET", f"{base}/api-keys"), ("POST", f"{base}/api-keys"), ("POST", f"{base}/api-keys/{key_id}/revoke"),
            ("GET", f"{base}/webhooks"), ("POST", f"{base}/webhooks"), ("GET", f"{base}/webhooks/we_x"),
            ("POST", f"{base}/webhooks/we_x/types"), ("POST", f"{base}/webhooks/we_x/enabled"),
            ("POST", f"{base}/webhooks/we_x/rotate"), ("POST", f"{base}/webhooks/we_x/replay"),
            ("POST", f"{base}/webhooks/we_x/deliveries/1/replay"), ("GET", f"{base}/plans"),
            ("GET", f"{base}/plans/new"), ("POST", f"{base}/plans/new"), ("GET", f"{base}/plans/1"),
            ("POST", f"{base}/plans/1/default"), ("GET", f"{base}/plans/1/preview"),
            ("POST", f"{base}/plans/1/steps/1/variants/a/stop")]


# --- who may use it ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_other_roles_of_the_creditor_get_403_on_every_console_route(app, client, creditor, role):
    sign_in(app, client, creditor, role)
    csrf = CSRF.search(client.get("/backoffice/", headers=EN).text).group(1)
    for method, url in [("GET", "/backoffice/console"), *console_urls(creditor.id)]:
        answer = client.open(url, method=method, data={"csrf_token": csrf, "label": "x"}, headers=EN)
        assert answer.status_code == 403, f"{method} {url} answered {answer.status_code}"
    assert "/backoffice/console" not in client.get("/backoffice/", headers=EN).text  # not in the menu


def test_a_creditor_admin_runs_the_console_and_sees_no_customers(app, client, creditor):
    from tests.factories import make_invoice

    invoice = make_invoice(creditor)
    db.session.commit()
    sign_in(app, client, creditor)
    home = client.get("/backoffice/", headers=EN)  # no cases: straight to the console
    assert home.status_code == 303 and home.headers["Location"].endswith("/backoffice/console")
    assert client.get("/backoffice/console", headers=EN).headers["Location"].endswith(f"/console/{creditor.id}")
    for path in ("", "/payments", "/rules", "/api-keys", "/webhooks", "/plans", "/plans/new"):
        page = client.get(f"/backoffice/console/{creditor.id}{path}", headers=EN)
        assert page.status_code == 200, path
        assert "Creditor console" in page.text
    assert client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN).status_code == 404
    assert client.get(f"/backoffice/invoices/{invoice.id}", headers=EN).status_code == 404
    found = client.get(f"/backoffice/search?q={invoice.number}", headers=EN)
    assert invoice.customer.name not in found.text


def test_another_creditors_console_is_404(app, client, creditor):
    other = make_creditor("DE")
    db.session.commit()
    key = db.session.scalar(select(ApiKey).where(ApiKey.creditor_id == other.id))
    assert key is None
    sign_in(app, client, creditor)
    csrf = CSRF.search(client.get(f"/backoffice/console/{creditor.id}", headers=EN).text).group(1)
    for method, url in console_urls(other.id):
        answer = client.open(url, method=method, data={"csrf_token": csrf, "label": "x"}, headers=EN)
        assert answer.status_code == 404, f"{method} {url} answered {answer.status_code}"


# --- brand ------------------------------------------------------------------------------------------------


def test_the_brand_is_saved_and_audited_with_before_and_after(app, client, creditor):
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}"
    old = creditor.brand_primary
    answer = form_post(client, page, page, brand_form(
        creditor, brand_primary="#123456", email_sender_name="Fjord Kunde", email_reply_to="svar@example.test",
        org_number="923 609 016", support_hours="Mon–Fri 9–15", callback_hours="mon-fri 09:00-15:00"))
    assert answer.status_code == 303
    db.session.expire_all()
    saved = db.session.get(Creditor, creditor.id)
    assert (saved.brand_primary, saved.email_sender_name, saved.email_reply_to) == ("#123456", "Fjord Kunde",
                                                                                      "svar@example.test")
    [entry] = entries(agent, "console_brand_changed")
    assert entry.creditor_id == creditor.id
    assert entry.detail["changes"]["brand_primary"] == [old, "#123456"]
    assert entry.detail["changes"]["email_sender_name"] == [None, "Fjord Kunde"]
    assert entry.detail["changes"]["callback_hours"] == [None, saved.callback_hours] and saved.callback_hours
    # the e-mails carry the sender name and the reply-to
    with app.test_request_context():
        rendered = notice_email(Notice(subject="s", heading="h", paragraphs=["p"], reply_to=saved.support_email),
                                saved, locale="en")
        assert (rendered.sender_name, rendered.reply_to) == ("Fjord Kunde", "svar@example.test")
        by_customer = notice_email(Notice(subject="s", heading="h", paragraphs=["p"], reply_to="kunde@example.test"),
                                   saved, locale="en")
        assert by_customer.reply_to == "kunde@example.test"


@pytest.mark.parametrize(("lang", "words"), [("en", "below the 4.5:1 that WCAG AA asks"),
                                             ("nb", "under 4,5:1"), ("de", "unter den 4,5:1")])
def test_a_colour_pair_below_aa_is_refused_with_the_fix_suggested_in_the_agents_language(app, client, creditor,
                                                                                         lang, words):
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}"
    before = (creditor.brand_primary, creditor.brand_accent, creditor.support_email)
    csrf = CSRF.search(client.get(page, headers=EN).text).group(1)
    answer = client.post(f"{page}?lang={lang}", data={"csrf_token": csrf, **brand_form(
        creditor, brand_primary="#ffcc00", support_email="help@example.test")}, headers={"Accept-Language": lang})
    assert answer.status_code == 422
    assert words in answer.text, answer.text
    assert "#ffcc00" in answer.text and 'id="f-brand_primary-error"' in answer.text
    assert 'aria-invalid="true"' in answer.text
    db.session.expire_all()
    saved = db.session.get(Creditor, creditor.id)
    assert (saved.brand_primary, saved.brand_accent, saved.support_email) == before
    assert entries(agent, "console_brand_changed") == []


def test_bad_fields_are_named_next_to_the_field_and_change_nothing(app, client, creditor):
    sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}"
    answer = form_post(client, page, page, brand_form(creditor, email_reply_to="not an address",
                                                      email_sender_name="Two\r\nBcc: x@example.test",
                                                      brand_accent="blue", support_phone="12",
                                                      callback_hours="whenever"))
    assert answer.status_code == 422
    for name in ("email_reply_to", "email_sender_name", "brand_accent", "support_phone", "callback_hours"):
        assert f'id="f-{name}-error"' in answer.text, name
    db.session.expire_all()
    assert db.session.get(Creditor, creditor.id).email_reply_to is None


@pytest.mark.parametrize(("name", "content"), [
    ("logo.png", b"\x7fELF\x02\x01\x01" + b"\x00" * 200),  # a renamed executable
    ("logo.png", b"\x89PNG\r\n\x1a\n" + b"MZ\x90\x00" * 40),  # PNG's first bytes, then anything
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="5" height="5"/></svg>'),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil.example/x.png"/></svg>'),
    ("logo.svg", b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>'),
])
def test_a_logo_that_is_not_a_plain_image_is_refused(app, client, creditor, name, content):
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}"
    answer = form_post(client, page, f"{page}/logo", {"logo": (io.BytesIO(content), name, "image/png")},
                       content_type="multipart/form-data")
    assert answer.status_code == 422
    assert 'id="f-logo-error"' in answer.text
    db.session.expire_all()
    assert db.session.get(Creditor, creditor.id).logo_version is None
    assert len(entries(agent, "console_logo_refused")) == 1


def test_a_png_logo_is_saved_and_shown_on_the_bill_page(app, client, creditor):
    from tests.factories import make_invoice
    from tests.functional.helpers import open_bill

    invoice = make_invoice(creditor)
    db.session.commit()
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}"
    answer = form_post(client, page, f"{page}/logo", {"logo": (io.BytesIO(png()), "brand.png")},
                       content_type="multipart/form-data")
    assert answer.status_code == 303
    db.session.expire_all()
    saved = db.session.get(Creditor, creditor.id)
    assert saved.logo_mime == "image/png" and saved.logo_version
    assert entries(agent, "console_logo_changed")[0].detail["changes"]["logo_version"] == [None, saved.logo_version]
    served = client.get(f"/brand/{saved.slug}/logo?v={saved.logo_version}")
    assert served.status_code == 200 and served.data == png()
    customer = app.test_client()
    bill = customer.get(open_bill(customer, app, invoice), headers=EN)
    assert f"/brand/{saved.slug}/logo?v={saved.logo_version}" in bill.text


@pytest.mark.parametrize(("lang", "words"), [("en", "This is not a valid VAT id"),
                                             ("nb", "Dette er ikke et gyldig MVA-nummer"),
                                             ("de", "Dies ist keine gültige USt-IdNr.")])
def test_the_vat_id_and_tax_number_are_checked_as_the_command_line_checks_them(app, client, creditor, lang, words):
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}"
    csrf = CSRF.search(client.get(page, headers=EN).text).group(1)
    refused = client.post(f"{page}?lang={lang}", headers={"Accept-Language": lang}, data={
        "csrf_token": csrf, **brand_form(creditor, vat_id="NO 923 609 017 MVA", tax_number="21-815")})
    assert refused.status_code == 422
    assert words in refused.text and 'id="f-vat_id-error"' in refused.text and 'id="f-tax_number-error"' in refused.text
    # the command line refuses the same id, with its own words
    cli = app.test_cli_runner().invoke(args=["creditors", "update", creditor.slug, "--vat-id", "NO 923 609 017 MVA"])
    assert cli.exit_code != 0 and "vat" in cli.output.lower()
    db.session.expire_all()
    assert db.session.get(Creditor, creditor.id).vat_id is None
    assert entries(agent, "console_brand_changed") == []

    saved = form_post(client, page, page, brand_form(creditor, vat_id="NO 923 609 016 MVA", tax_number="21/815/08150"))
    assert saved.status_code == 303
    db.session.expire_all()
    creditor = db.session.get(Creditor, creditor.id)
    assert (creditor.vat_id, creditor.tax_number) == ("NO923609016MVA", "21/815/08150")  # in its normal form
    [entry] = entries(agent, "console_brand_changed")
    assert entry.detail["changes"]["vat_id"] == [None, "NO923609016MVA"]
    assert entry.detail["changes"]["tax_number"] == [None, "21/815/08150"]
    assert 'value="NO923609016MVA"' in client.get(page, headers=EN).text


# --- payments and keys ------------------------------------------------------------------------------------


def test_keys_are_stored_encrypted_shown_masked_and_never_audited(app, client, creditor, gateways):
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}/payments"
    answer = form_post(client, page, f"{page}/stripe", {"methods": ["card", "klarna"], "secret_key": STRIPE_SECRET,
                                                        "publishable_key": "pk_test_" + "p" * 24,
                                                        "webhook_secret": WEBHOOK_SECRET})
    assert answer.status_code == 303, answer.text
    raw = db.session.execute(text("SELECT credentials_encrypted FROM creditor_gateways WHERE creditor_id = :c "
                                  "AND provider = 'stripe'"), {"c": creditor.id}).scalar_one()
    assert STRIPE_SECRET not in raw and WEBHOOK_SECRET not in raw and "s3cr3t" not in raw
    with app.app_context():
        assert json.loads(decrypt(raw))["secret_key"] == STRIPE_SECRET
    shown = client.get(page, headers=EN).text
    assert STRIPE_SECRET not in shown and WEBHOOK_SECRET not in shown and "s3cr3t" not in shown
    assert "••••WXYZ" in shown and "••••ABCD" in shown
    listed = app.test_cli_runner().invoke(args=["payments", "gateways", creditor.slug])
    assert "stripe, element: card, klarna (keys set in the console)" in listed.output, listed.output
    [entry] = entries(agent, "console_provider_saved")
    assert "s3cr3t" not in json.dumps(entry.detail) and sorted(entry.detail["keys_changed"]) == [
        "publishable_key", "secret_key", "webhook_secret"]
    # an empty secret keeps the stored one; the methods change
    form_post(client, page, f"{page}/stripe", {"methods": ["card"], "publishable_key": "pk_test_" + "q" * 24})
    choice = db.session.scalar(select(CreditorGateway).where(CreditorGateway.creditor_id == creditor.id))
    db.session.refresh(choice)
    with app.app_context():
        assert json.loads(decrypt(choice.credentials_encrypted))["secret_key"] == STRIPE_SECRET
    assert choice.methods == ["card"]


def test_keys_of_the_wrong_shape_are_refused_and_nothing_changes(app, client, creditor, gateways):
    sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}/payments"
    answer = form_post(client, page, f"{page}/stripe", {"methods": ["card"], "secret_key": "pk_live_oops",
                                                        "publishable_key": "", "webhook_secret": "x"})
    assert answer.status_code == 422
    for name in ("secret_key", "publishable_key", "webhook_secret"):
        assert f'id="k-stripe-{name}-error"' in answer.text
    assert db.session.scalar(select(CreditorGateway).where(CreditorGateway.creditor_id == creditor.id)) is None
    assert form_post(client, page, f"{page}/stripe", {}).status_code == 422  # no method chosen


def test_the_key_check_asks_stripe_and_the_bill_page_pays_with_the_stored_keys(app, client, creditor, gateways):
    from tests.factories import make_invoice
    from tests.functional.helpers import open_bill

    invoice = make_invoice(creditor)
    db.session.commit()
    with LocalStripe() as server:
        gateways[creditor.slug] = {"stripe": {"api_base": server.api_base}}  # the instance's address, no keys
        agent = sign_in(app, client, creditor)
        page = f"/backoffice/console/{creditor.id}/payments"
        assert "There are no keys to check yet." in form_post(client, page, f"{page}/stripe/check").text
        form_post(client, page, f"{page}/stripe", {"methods": ["card"], "secret_key": STRIPE_SECRET,
                                                   "publishable_key": "pk_test_" + "p" * 24,
                                                   "webhook_secret": WEBHOOK_SECRET})
        checked = form_post(client, page, f"{page}/stripe/check")
        assert checked.status_code == 200 and "Stripe accepted the keys." in checked.text
        # a restricted-key shape localstripe does not accept: Stripe's refusal is shown
        form_post(client, page, f"{page}/stripe", {"methods": ["card"], "secret_key": "rk_test_" + "r" * 24,
                                                   "publishable_key": "pk_test_" + "p" * 24})
        refused = form_post(client, page, f"{page}/stripe/check")
        assert "Stripe did not accept the keys" in refused.text
        assert [e.detail["accepted"] for e in entries(agent, "console_keys_checked")] == [False, True, False]
        form_post(client, page, f"{page}/stripe", {"methods": ["card"], "secret_key": STRIPE_SECRET,
                                                   "publishable_key": "pk_test_" + "p" * 24})
        customer = app.test_client()
        bill = customer.get(open_bill(customer, app, invoice), headers=EN)
        # the stored keys are in force: Stripe is offered, not the test-mode simulator
        assert 'value="stripe"' in bill.text and 'value="simulator"' not in bill.text


def test_the_key_check_asks_adyen(app, client, creditor, gateways):
    with AdyenServer(api_key=ADYEN_KEY) as server:
        gateways[creditor.slug] = {"adyen": {"checkout_base_url": server.base_url}}
        sign_in(app, client, creditor)
        page = f"/backoffice/console/{creditor.id}/payments"
        adyen = {"methods": ["card"], "api_key": ADYEN_KEY, "hmac_key": "44782DEF547AAA06C910C43932B1EB0C",
                 "merchant_account": "FjordlysECOM", "client_key": "test_CLIENTKEY123", "environment": "test"}
        assert form_post(client, page, f"{page}/adyen", adyen).status_code == 303
        assert "Adyen accepted the keys." in form_post(client, page, f"{page}/adyen/check").text
        form_post(client, page, f"{page}/adyen", {**adyen, "api_key": "a_wrong_api_key"})
        refused = form_post(client, page, f"{page}/adyen/check").text
        assert "Adyen did not accept the keys" in refused and "401" in refused and "a_wrong_api_key" not in refused


# --- rules ------------------------------------------------------------------------------------------------


def rules_form(**changes):
    fields = {"allow_partial_payments": "on", "min_partial_payment": "100", "dispute_partial_payable": "on",
              "promise_max_days": "10", "grace_days": "2", "deferral_max_days": "14", "deferral_max_count": "1",
              "deferral_fee": "0", "plan_max_months": "6", "plan_min_instalment": "200", "plan_min_balance": "0",
              "plan_fee": "25.50", "plan_interest_bp": "0"}
    return {k: v for k, v in {**fields, **changes}.items() if v is not None}


def test_part_payments_and_rules_are_saved_in_minor_units_and_audited(app, client, creditor):
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}/rules"
    assert form_post(client, page, page, rules_form()).status_code == 303
    db.session.expire_all()
    saved = db.session.get(Creditor, creditor.id)
    assert saved.allow_partial_payments and saved.min_partial_payment == 10000 and saved.plan_fee == 2550
    assert saved.promise_max_days == 10
    [entry] = entries(agent, "console_rules_changed")
    assert entry.detail["changes"]["allow_partial_payments"] == [False, True]
    assert entry.detail["changes"]["min_partial_payment"] == [0, 10000]


@pytest.mark.parametrize("changes", [{"min_partial_payment": "0"}, {"promise_max_days": "-1"},
                                     {"plan_fee": "12.345"}, {"grace_days": "many"}, {"deferral_fee": "1e9"},
                                     {"grace_days": "²"}])  # a digit to str.isdigit, not to int()
def test_bad_rules_are_refused_next_to_the_field(app, client, creditor, changes):
    sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}/rules"
    answer = form_post(client, page, page, rules_form(**changes))
    assert answer.status_code == 422
    [name] = changes
    assert f'id="f-{name}-error"' in answer.text
    db.session.expire_all()
    assert db.session.get(Creditor, creditor.id).allow_partial_payments is False


def test_the_collection_policy_is_set_with_a_partner(app, client, creditor):
    with app.test_request_context():
        partner = add_partner("console-partner", "Inkasso Konsoll", "https://partner.example/cases").partner
        db.session.commit()
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}/rules"
    assert "Inkasso Konsoll" in client.get(page, headers=EN).text
    refused = form_post(client, page, page, rules_form(policy_partner_id=str(partner.id), policy_min_balance="x",
                                                       policy_days_past_due="30",
                                                       policy_days_after_final_reminder="14"))
    assert refused.status_code == 422 and 'id="f-policy_min_balance-error"' in refused.text
    assert form_post(client, page, page, rules_form(
        policy_partner_id=str(partner.id), policy_enabled="on", policy_min_balance="500", policy_days_past_due="45",
        policy_days_after_final_reminder="14")).status_code == 303
    policy = db.session.scalar(select(Policy).where(Policy.creditor_id == creditor.id))
    assert (policy.partner_id, policy.min_balance, policy.days_past_due) == (partner.id, 50000, 45)
    assert entries(agent, "console_rules_changed")[-1].detail["policy"]["days_past_due"] == [None, 45]


# --- API keys ---------------------------------------------------------------------------------------------


def test_api_keys_are_named_shown_once_used_and_revoked(app, client, creditor):
    from tests.factories import make_invoice

    invoice = make_invoice(creditor)
    db.session.commit()
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}/api-keys"
    assert form_post(client, page, page, {"label": ""}).status_code == 422
    created = form_post(client, page, page, {"label": "Billing system"})
    assert created.status_code == 200
    key = created.text.split('id="new-key">')[1].split("<")[0]
    assert key.startswith("pk_")
    listing = client.get(page, headers=EN).text
    assert key not in listing and "Billing system" in listing and "never" in listing
    api = app.test_client()
    assert api.get(f"/api/v1/invoices/{invoice.number}", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    row = db.session.scalar(select(ApiKey).where(ApiKey.creditor_id == creditor.id, ApiKey.label == "Billing system"))
    db.session.refresh(row)
    assert row.last_used_at is not None
    assert "never" not in client.get(page, headers=EN).text.split("Billing system")[1].split("</tr>")[0]
    assert form_post(client, page, f"{page}/{row.id}/revoke").status_code == 303
    assert api.get(f"/api/v1/invoices/{invoice.number}", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert [e.action for e in db.session.scalars(select(AuditEntry).where(
        AuditEntry.agent_id == agent.id, AuditEntry.action.like("console_api_key_%")).order_by(AuditEntry.id))] == [
        "console_api_key_created", "console_api_key_revoked"]
    assert key not in json.dumps([e.detail for e in entries(agent, "console_api_key_created")])
