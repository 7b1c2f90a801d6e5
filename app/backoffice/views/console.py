"""The creditor console: a creditor admin runs the creditor's account here. Brand (logo, colours, the
e-mails' sender, support contacts, the legal footer), payment providers with their methods and keys,
part payments, the self-service rules and the collection policy, and API keys; webhook endpoints in
`views.webhooks`.

Every route names the creditor (`/console/<creditor_id>/...`) and needs the creditor admin role there:
another creditor's console is a 404, and an agent, supervisor or admin of this creditor gets 403. Every
change is recorded in the audit log with its settings before and after (never a secret); bad input is
shown next to its field, translated, and changes nothing (422).
"""

from __future__ import annotations

from typing import Any

from babel.numbers import format_decimal
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from app.backoffice import console
from app.backoffice.views import CONSOLE_ROLES, CONTENT_ROLES, bp, console_creditor, record, scope
from app.creditors.models import ApiKey, Creditor
from app.creditors.services import (
    API_KEY_MODES,
    API_KEY_SHOWN,
    LOGO_MAX_BYTES,
    create_api_key,
    revoke_api_key,
    set_logo,
    sniff_logo,
)
from app.errors import InvalidData
from app.extensions import db
from app.money import parse_amount, to_decimal
from app.payments import providers
from app.payments.gateways import PROVIDERS
from app.payments.gateways.base import METHOD_REACH
from app.payments.receipts import method_label
from app.templating import current_format_locale

API_KEY_NAME_MAX = 100


def _creditors() -> list[Creditor]:
    ids = scope(CONSOLE_ROLES).creditor_ids
    return list(db.session.scalars(select(Creditor).where(Creditor.id.in_(ids)).order_by(Creditor.name)))


@bp.get("/console")
@login_required
def console_home():
    """The creditors this agent is a creditor admin of (straight to the one, if only one)."""
    creditors = _creditors()
    if not creditors:
        writes = scope(CONTENT_ROLES).creditor_ids
        if writes:  # a content editor: the content of the (first) creditor
            return redirect(url_for(".console_content", creditor_id=min(writes)), code=303)
        abort(403 if scope().creditor_ids else 404)
    if len(creditors) == 1:
        return redirect(url_for(".console_brand", creditor_id=creditors[0].id), code=303)
    return render_template("backoffice/console/home.html", creditors=creditors)


# --- words --------------------------------------------------------------------------------------------


def field_problems(errors: dict[str, str], creditor: Creditor | None = None) -> dict[str, str]:
    """Each field's problem in the agent's language."""
    said = {}
    for name, code in errors.items():
        if code == "contrast" and creditor is not None:
            found = console.colour_problem(request.form.get(name, ""))
            if found is not None:
                said[name] = _("%(colour)s on white has a contrast of %(ratio)s:1, below the 4.5:1 that WCAG AA "
                               "asks of text. The nearest shade that passes is %(suggestion)s.",
                               colour=found.colour, suggestion=found.suggestion,
                               ratio=format_decimal(found.ratio, format="0.00", locale=current_format_locale()))
                continue
        said[name] = _problem(name, code)
    return said


def _problem(name: str, code: str) -> str:
    if name in ("brand_primary", "brand_accent"):
        return _("Please enter a colour such as #1f4b99.")
    if name in ("support_email", "email_reply_to"):
        return _("Please enter an e-mail address, such as support@example.com.")
    if name == "support_phone":
        return _("Please enter a phone number with its country code, such as +47 22 33 44 55.")
    if name == "support_url":
        return _("Please enter a web address starting with https://.")
    if name == "callback_hours":
        return _("Please write the hours as days and times, such as “mon-fri 08:00-20:00, sat 10:00-14:00”.")
    if name == "address":
        return _("Please keep the address to at most 500 characters.")
    if name == "vat_id":
        return _("This is not a valid VAT id. Please enter it with its country prefix and check digits, such as "
                 "NO923609016MVA, DE136695976 or IE6388047V.")
    if name == "tax_number":
        return _("Please enter the tax number as digits with single spaces or slashes between them, at most 20 "
                 "characters, such as 21/815/08150.")
    if name in ("email_sender_name", "legal_name", "support_hours", "org_number"):
        return _("Please keep this to one line of at most %(most)s characters.",
                 most={"email_sender_name": 100, "org_number": 32}.get(name, 200))
    if name == "logo":
        if code.startswith("an SVG"):
            return _("This SVG holds a script or refers to something outside the file. Please export it as a "
                     "plain drawing, or upload a PNG.")
        return _("Please choose a PNG, JPEG or SVG image of at most 200 KB.")
    if code == "amount":
        return _("Please enter an amount, such as 125.50.")
    if code == "number":
        return _("Please enter a whole number, zero or more.")
    if code == "partial_minimum":
        return _("With part payments on, please set the least part above zero.")
    if code == "partner":
        return _("Please choose a collection partner.")
    if code == "required":
        return _("Please fill this in.")
    if code == "shape":
        return _("This does not look like a key of this provider. Please copy it again from its dashboard.")
    if code == "live_only":
        return _("Only a live account has its own address; leave this empty for a test account.")
    if code == "live_key":
        return _("This is a live key. Test bills use test keys only (such as sk_test_… or an Adyen test "
                 "account); enter the live keys above.")
    if code == "test_key":
        return _("This is a test key. Live bills use live keys only; enter test keys under “Test keys”.")
    if code == "unusable":
        return _("These settings cannot be used together. Please check them against the provider's dashboard.")
    if name == "label":
        return _("Please give the key a name of at most %(most)s characters.", most=API_KEY_NAME_MAX)
    return _("Something in the form was not right.")


# --- brand --------------------------------------------------------------------------------------------


@bp.get("/console/<int:creditor_id>")
@login_required
def console_brand(creditor_id: int):
    creditor = console_creditor(creditor_id)
    return _brand_page(creditor, console.brand_of(creditor))


def _brand_page(creditor: Creditor, values: dict[str, Any], problems: dict[str, str] | None = None,
                status: int = 200):
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id, page="brand")
    db.session.commit()
    return render_template("backoffice/console/brand.html", creditor=creditor, values=values,
                           problems=problems or {}, section="brand", logo_max_kb=LOGO_MAX_BYTES // 1024), status


@bp.post("/console/<int:creditor_id>")
@login_required
def console_save_brand(creditor_id: int):
    creditor = console_creditor(creditor_id)
    given = {name: request.form.get(name, "") for name in console.BRAND_FIELDS}
    try:
        changes = console.update_brand(creditor, given)
    except InvalidData as exc:
        db.session.rollback()
        creditor = console_creditor(creditor_id)
        return _brand_page(creditor, given, field_problems(exc.errors, creditor), 422)
    record("console_brand_changed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
           changes=changes)
    db.session.commit()
    flash(_("The brand is saved.") if changes else _("Nothing changed."), "done")
    return redirect(url_for(".console_brand", creditor_id=creditor.id), code=303)


@bp.post("/console/<int:creditor_id>/logo")
@login_required
def console_logo(creditor_id: int):
    """Upload a logo: checked by its content (PNG and JPEG read whole by Pillow; SVG without scripts or
    outside references), never by its name or the browser's word for its type."""
    creditor = console_creditor(creditor_id)
    upload = request.files.get("logo")
    content = upload.read(LOGO_MAX_BYTES + 1) if upload else b""
    try:
        sniff_logo(content)
    except InvalidData as exc:
        record("console_logo_refused", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
               bytes=len(content), reason=exc.errors.get("logo"))
        return _brand_page(creditor, console.brand_of(creditor), field_problems(exc.errors), 422)
    before = creditor.logo_version
    set_logo(creditor, content)
    record("console_logo_changed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
           changes={"logo_version": [before, creditor.logo_version], "logo_mime": creditor.logo_mime})
    db.session.commit()
    flash(_("The logo is saved."), "done")
    return redirect(url_for(".console_brand", creditor_id=creditor.id), code=303)


# --- payments -----------------------------------------------------------------------------------------


def _payments_page(creditor: Creditor, problems: dict[str, dict[str, str]] | None = None,
                   checks: dict[str, tuple[bool, str]] | None = None, status: int = 200):
    choices = {c.provider: c for c in providers.creditor_gateways(creditor.id)}
    rows = []
    for provider in PROVIDERS:
        choice = choices.get(provider)
        stored = providers.stored_credentials(choice) if choice is not None else None
        fields = [(name, secret, providers.masked((stored or {}).get(name)) if secret else (stored or {}).get(name, ""))
                  for name, secret in providers.CREDENTIAL_FIELDS.get(provider, ())]
        test = providers.stored_credentials(choice, livemode=False) if choice is not None else None
        test_fields = [(name, secret,
                        providers.masked((test or {}).get(name)) if secret else (test or {}).get(name, ""))
                       for name, secret in providers.CREDENTIAL_FIELDS.get(provider, ())
                       if name != "checkout_base_url"]  # a test account talks to the provider's test API
        rows.append({"provider": provider, "choice": choice, "fields": fields, "stored": bool(stored),
                     "instance_keys": providers.instance_has_keys(creditor, provider), "test_fields": test_fields,
                     "test_stored": bool(test)})
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id, page="payments")
    db.session.commit()
    return render_template("backoffice/console/payments.html", creditor=creditor, rows=rows, section="payments",
                           methods=list(METHOD_REACH), method_label=lambda m: method_label(m, ""),
                           problems=problems or {}, checks=checks or {}, field_label=_credential_label,
                           portal_base=(creditor.portal_base_url or current_app.config["PORTAL_BASE_URL"]).rstrip("/")
                           ), status


def _credential_label(name: str) -> str:
    return {"secret_key": _("Secret key"), "publishable_key": _("Publishable key"),
            "webhook_secret": _("Webhook signing secret"), "api_key": _("API key"),
            "hmac_key": _("HMAC key of the webhook"), "merchant_account": _("Merchant account"),
            "client_key": _("Client key"), "environment": _("Environment (test or live)"),
            "checkout_base_url": _("Live Checkout address (live accounts only)")}.get(name, name)


def _provider(name: str) -> str:
    if name not in PROVIDERS:
        abort(404)
    return name


@bp.get("/console/<int:creditor_id>/payments")
@login_required
def console_payments(creditor_id: int):
    return _payments_page(console_creditor(creditor_id))


@bp.post("/console/<int:creditor_id>/payments/<provider>")
@login_required
def console_save_provider(creditor_id: int, provider: str):
    """Offer a provider with these methods (or stop offering it), and store its keys (encrypted)."""
    creditor, provider = console_creditor(creditor_id), _provider(provider)
    if request.form.get("withdraw"):
        withdrawn = providers.withdraw_gateway(creditor, provider)
        record("console_provider_withdrawn", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
               provider=provider, changed=withdrawn)
        db.session.commit()
        flash(_("%(provider)s is no longer offered.", provider=provider.capitalize()), "done")
        return redirect(url_for(".console_payments", creditor_id=creditor.id), code=303)
    methods = [m for m in request.form.getlist("methods") if m in METHOD_REACH]
    before = {c.provider: list(c.methods or ()) for c in providers.creditor_gateways(creditor.id)}.get(provider)
    given = {name: request.form.get(name, "") for name, _secret in providers.CREDENTIAL_FIELDS.get(provider, ())}
    changed_keys = [name for name, value in given.items() if value.strip()]
    try:
        if not methods:
            raise InvalidData({"methods": "required"})
        providers.offer_gateway(creditor, provider, methods)
        if changed_keys:
            providers.set_credentials(creditor, provider, given)
    except InvalidData as exc:
        db.session.rollback()
        creditor = console_creditor(creditor_id)
        problems = {name: _problem(name, code) for name, code in exc.errors.items()}
        if "methods" in problems:
            problems["methods"] = _("Please choose at least one way to pay.")
        return _payments_page(creditor, {provider: problems}, status=422)
    # the names of the keys changed, never their values
    record("console_provider_saved", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
           provider=provider, changes={"methods": [before, methods]} if before != methods else {},
           keys_changed=changed_keys)
    db.session.commit()
    flash(_("%(provider)s is saved.", provider=provider.capitalize()), "done")
    return redirect(url_for(".console_payments", creditor_id=creditor.id), code=303)


@bp.post("/console/<int:creditor_id>/payments/<provider>/test")
@login_required
def console_save_test_keys(creditor_id: int, provider: str):
    """Store a provider's test keys, for test bills only (encrypted, apart from the live keys)."""
    creditor, provider = console_creditor(creditor_id), _provider(provider)
    given = {name: request.form.get(name, "") for name, _secret in providers.CREDENTIAL_FIELDS.get(provider, ())
             if name != "checkout_base_url"}
    changed_keys = [name for name, value in given.items() if value.strip()]
    try:
        if not changed_keys:
            raise InvalidData({"test_" + name: "required" for name in given})
        providers.set_credentials(creditor, provider, given, livemode=False)
    except InvalidData as exc:
        db.session.rollback()
        creditor = console_creditor(creditor_id)
        if exc.errors.get("provider") == "not_offered":
            problems = {"test": _("Please offer %(provider)s first (above), then add its test keys.",
                                  provider=provider.capitalize())}
        else:
            problems = {name if name.startswith("test_") else "test_" + name: _problem(name.removeprefix("test_"), code)
                        for name, code in exc.errors.items()}
        return _payments_page(creditor, {provider: problems}, status=422)
    record("console_test_keys_saved", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
           provider=provider, keys_changed=changed_keys)  # the names of the keys, never their values
    db.session.commit()
    flash(_("The test keys of %(provider)s are saved.", provider=provider.capitalize()), "done")
    return redirect(url_for(".console_payments", creditor_id=creditor.id), code=303)


@bp.post("/console/<int:creditor_id>/payments/<provider>/test/forget")
@login_required
def console_forget_test_keys(creditor_id: int, provider: str):
    """Delete the stored test keys."""
    return _forget_keys(creditor_id, provider, livemode=False)


@bp.post("/console/<int:creditor_id>/payments/<provider>/test/check")
@login_required
def console_check_test_keys(creditor_id: int, provider: str):
    """Ask the provider whether it accepts the test keys, and show its answer."""
    return _check_keys(creditor_id, provider, livemode=False)


@bp.post("/console/<int:creditor_id>/payments/<provider>/forget")
@login_required
def console_forget_keys(creditor_id: int, provider: str):
    """Delete the stored (live) keys."""
    return _forget_keys(creditor_id, provider, livemode=True)


@bp.post("/console/<int:creditor_id>/payments/<provider>/check")
@login_required
def console_check_keys(creditor_id: int, provider: str):
    """Ask the provider whether it accepts the keys, and show its answer."""
    return _check_keys(creditor_id, provider, livemode=True)


def _forget_keys(creditor_id: int, provider: str, *, livemode: bool):
    creditor, provider = console_creditor(creditor_id), _provider(provider)
    forgotten = providers.forget_credentials(creditor, provider, livemode=livemode)
    record("console_keys_deleted" if livemode else "console_test_keys_deleted", creditor_id=creditor.id,
           record_type="creditor", record_id=creditor.id, provider=provider, changed=forgotten)
    db.session.commit()
    flash(_("The stored keys are deleted.") if livemode else _("The stored test keys are deleted."), "done")
    return redirect(url_for(".console_payments", creditor_id=creditor.id), code=303)


def _check_keys(creditor_id: int, provider: str, *, livemode: bool):
    creditor, provider = console_creditor(creditor_id), _provider(provider)
    problem = providers.check_credentials(creditor, provider, livemode=livemode)
    record("console_keys_checked" if livemode else "console_test_keys_checked", creditor_id=creditor.id,
           record_type="creditor", record_id=creditor.id, provider=provider, accepted=problem is None)
    db.session.commit()
    name = provider.capitalize()
    if problem is None:
        said = _("%(provider)s accepted the keys.", provider=name) if livemode \
            else _("%(provider)s accepted the test keys.", provider=name)
    elif problem == "no_keys":
        said = _("There are no keys to check yet.") if livemode else _("There are no test keys to check yet.")
    elif livemode:
        said = _("%(provider)s did not accept the keys: %(reason)s", provider=name, reason=problem)
    else:
        said = _("%(provider)s did not accept the test keys: %(reason)s", provider=name, reason=problem)
    return _payments_page(creditor, checks={provider: (problem is None, said)})


# --- rules --------------------------------------------------------------------------------------------


def _money_text(amount: int | None, currency: str) -> str:
    return "" if amount is None else str(to_decimal(amount, currency))


def _rules_page(creditor: Creditor, values: dict[str, Any] | None = None, problems: dict[str, str] | None = None,
                status: int = 200):
    if values is None:
        values = {**console.rules_of(creditor), **{f"policy_{k}": v
                                                    for k, v in console.policy_settings(creditor.id).items()}}
        for name in (*console.RULE_AMOUNTS, "policy_min_balance"):
            values[name] = _money_text(values[name], creditor.currency)
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id, page="rules")
    db.session.commit()
    return render_template("backoffice/console/rules.html", creditor=creditor, values=values, section="rules",
                           problems=problems or {}, partners=console.partners(),
                           amounts=console.RULE_AMOUNTS, numbers=console.RULE_NUMBERS, words=_rule_words()), status


def _rule_words() -> dict[str, str]:
    return {
        "min_partial_payment": _("Least part a customer may pay"),
        "promise_max_days": _("Latest promised date, in days from today (0: no promises)"),
        "grace_days": _("Days of grace after a promised date or an instalment"),
        "deferral_max_days": _("Most days of more time granted at once (0: no deferrals)"),
        "deferral_max_count": _("Deferrals granted at once per bill"),
        "deferral_fee": _("Fee for more time"),
        "plan_max_months": _("Most monthly instalments (below 2: no plans)"),
        "plan_min_instalment": _("Smallest instalment"),
        "plan_min_balance": _("Least balance a plan is offered for (0: the currency's)"),
        "plan_fee": _("Fee for an instalment plan"),
        "plan_interest_bp": _("Yearly interest on a plan, in hundredths of a per cent (1000 = 10 %)"),
    }


def _whole(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _amount(text: str | None, currency: str) -> int | None:
    try:
        return parse_amount(text, currency)
    except ValueError:
        return None


@bp.get("/console/<int:creditor_id>/rules")
@login_required
def console_rules(creditor_id: int):
    return _rules_page(console_creditor(creditor_id))


@bp.post("/console/<int:creditor_id>/rules")
@login_required
def console_save_rules(creditor_id: int):
    """Part payments and the self-service rules; the collection policy when a partner is chosen."""
    creditor = console_creditor(creditor_id)
    form = request.form
    flags = {name: form.get(name) == "on" for name in console.RULE_FLAGS}
    numbers = {name: _whole(form.get(name)) for name in console.RULE_NUMBERS}
    numbers |= {name: _amount(form.get(name), creditor.currency) for name in console.RULE_AMOUNTS}
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    try:
        changes = console.update_rules(creditor, flags, numbers)
    except InvalidData as exc:
        errors.update(exc.errors)
    policy_changes: dict[str, Any] = {}
    if form.get("policy_partner_id") and not errors:
        try:
            policy_changes = console.update_policy(
                creditor, partner_id=_whole(form.get("policy_partner_id")), enabled=form.get("policy_enabled") == "on",
                min_balance=_amount(form.get("policy_min_balance"), creditor.currency),
                days_past_due=_whole(form.get("policy_days_past_due")),
                days_after_final_reminder=_whole(form.get("policy_days_after_final_reminder")),
                keep_payments=form.get("policy_keep_payments") == "on")
        except InvalidData as exc:
            errors.update({f"policy_{name}": code for name, code in exc.errors.items()})
    if errors:
        db.session.rollback()
        creditor = console_creditor(creditor_id)
        values = {**{name: form.get(name, "") for name in form}, **flags,
                  "policy_enabled": form.get("policy_enabled") == "on",
                  "policy_keep_payments": form.get("policy_keep_payments") == "on",
                  "policy_partner_id": _whole(form.get("policy_partner_id"))}
        problems = {name: _problem(name.removeprefix("policy_"), code) for name, code in errors.items()}
        return _rules_page(creditor, values, problems, 422)
    record("console_rules_changed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
           changes=changes, policy=policy_changes)
    db.session.commit()
    flash(_("The rules are saved.") if changes or policy_changes else _("Nothing changed."), "done")
    return redirect(url_for(".console_rules", creditor_id=creditor.id), code=303)


# --- API keys -----------------------------------------------------------------------------------------


def _keys_page(creditor: Creditor, *, new_key: str | None = None, problems: dict[str, str] | None = None,
               status: int = 200):
    keys = list(db.session.scalars(select(ApiKey).where(ApiKey.creditor_id == creditor.id)
                                   .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())))
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id, page="api_keys")
    db.session.commit()
    return render_template("backoffice/console/api_keys.html", creditor=creditor, keys=keys, new_key=new_key,
                           problems=problems or {}, section="api_keys", name_max=API_KEY_NAME_MAX), status


@bp.get("/console/<int:creditor_id>/api-keys")
@login_required
def console_api_keys(creditor_id: int):
    return _keys_page(console_creditor(creditor_id))


@bp.post("/console/<int:creditor_id>/api-keys")
@login_required
def console_create_api_key(creditor_id: int):
    """A new named key, shown this once on this answer (only its hash is kept; the page is no-store)."""
    creditor = console_creditor(creditor_id)
    name = (request.form.get("label") or "").strip()
    mode = request.form.get("mode", "live")  # the form's default; anything else but "test" is refused
    problems = {}
    if not name or len(name) > API_KEY_NAME_MAX:
        problems["label"] = _problem("label", "required")
    if mode not in API_KEY_MODES:
        problems["mode"] = _("Choose a live key or a test key.")
    if problems:
        return _keys_page(creditor, problems=problems, status=422)
    key = create_api_key(creditor, label=name, mode=mode)
    created = db.session.scalar(select(ApiKey).where(ApiKey.creditor_id == creditor.id)
                                .order_by(ApiKey.id.desc()).limit(1))
    record("console_api_key_created", creditor_id=creditor.id, record_type="api_key",
           record_id=created.id if created else None, label=name, mode=mode, prefix=key[:API_KEY_SHOWN])
    db.session.commit()
    return _keys_page(creditor, new_key=key)


@bp.post("/console/<int:creditor_id>/api-keys/<int:key_id>/revoke")
@login_required
def console_revoke_api_key(creditor_id: int, key_id: int):
    creditor = console_creditor(creditor_id)
    key = revoke_api_key(creditor, key_id)
    if key is None:
        abort(404)
    record("console_api_key_revoked", creditor_id=creditor.id, record_type="api_key", record_id=key.id,
           label=key.label, prefix=key.prefix)
    db.session.commit()
    flash(_("The key “%(name)s” is revoked: the API refuses it from now on.", name=key.label or key.prefix), "done")
    return redirect(url_for(".console_api_keys", creditor_id=creditor.id), code=303)
