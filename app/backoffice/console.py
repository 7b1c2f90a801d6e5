"""The creditor console's changes: a creditor's brand, e-mails, support contacts and legal footer (with
the VAT id and tax number invoices print, checked as `flask creditors update` checks them); part
payments, self-service rules and the collection policy. Each function checks every field, changes
nothing on a problem (InvalidData, codes by field), and returns what changed as {field: [before, after]}
for the audit log: settings only, never a secret.

Colours typed in the console are refused below WCAG AA (4.5:1 on white) with the nearest shade that
passes suggested; the command line still adjusts them (`flask creditors`), as it always did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app.creditors.brand import AA_NORMAL_TEXT, contrast_ratio, ensure_contrast, parse_hex, to_hex
from app.creditors.models import Creditor
from app.creditors.services import CreditorInput, update_creditor, validate_creditor
from app.debt_collection.models import Partner
from app.debt_collection.partners import policy_of, set_policy
from app.errors import InvalidData
from app.extensions import db

#: the brand page's fields, all on the creditor
BRAND_FIELDS = ("brand_primary", "brand_accent", "email_sender_name", "email_reply_to", "support_email",
                "support_phone", "support_url", "support_hours", "callback_hours", "legal_name", "org_number",
                "vat_id", "tax_number", "address")
#: the rules page's whole numbers (days, counts, basis points) and amounts (minor units) on the creditor
RULE_NUMBERS = ("promise_max_days", "grace_days", "deferral_max_days", "deferral_max_count", "plan_max_months",
                "plan_interest_bp")
RULE_AMOUNTS = ("min_partial_payment", "deferral_fee", "plan_min_instalment", "plan_min_balance", "plan_fee")
RULE_FLAGS = ("allow_partial_payments", "dispute_partial_payable")
#: the least and most of each whole number (as `flask resolutions rules` takes them)
NUMBER_RANGE = (0, 10_000_000)
POLICY_FIELDS = ("enabled", "partner_id", "min_balance", "days_past_due", "days_after_final_reminder",
                 "keep_payments")


@dataclass(frozen=True)
class ColourProblem:
    """A colour below AA on white: its contrast, and the nearest shade of it that passes."""

    colour: str
    ratio: float
    suggestion: str


def colour_problem(value: str) -> ColourProblem | None:
    """None when `value` (a #rrggbb colour) reaches AA on white; ValueError when it is no colour."""
    colour = to_hex(parse_hex(value))
    ratio = contrast_ratio(colour, "#ffffff")
    if ratio >= AA_NORMAL_TEXT:
        return None
    return ColourProblem(colour, ratio, ensure_contrast(colour))


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    return {name: [before[name], after[name]] for name in after if before.get(name) != after[name]}


def brand_of(creditor: Creditor) -> dict[str, Any]:
    return {name: getattr(creditor, name) for name in BRAND_FIELDS}


def update_brand(creditor: Creditor, given: Mapping[str, str | None]) -> dict[str, list]:
    """Change the brand fields. InvalidData on any problem, nothing changed: a colour below AA is
    "contrast" (`colour_problem` gives its ratio and the suggested shade), one that is no colour "colour";
    the other fields are checked as `flask creditors update` checks them."""
    before = brand_of(creditor)
    errors: dict[str, str] = {}
    for name in ("brand_primary", "brand_accent"):
        try:
            if colour_problem((given.get(name) or "").strip()) is not None:
                errors[name] = "contrast"
        except ValueError:
            errors[name] = "colour"
    current = {name: getattr(creditor, name) for name in CreditorInput.__dataclass_fields__ if name != "notes"}
    data = CreditorInput(**{**current, **{name: given.get(name) for name in BRAND_FIELDS}})
    try:
        validate_creditor(data)  # every other field, as the command line checks it; changes nothing
    except InvalidData as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise InvalidData(errors)
    update_creditor(creditor, data)
    return _changes(before, brand_of(creditor))


def rules_of(creditor: Creditor) -> dict[str, Any]:
    return {name: getattr(creditor, name) for name in (*RULE_FLAGS, *RULE_NUMBERS, *RULE_AMOUNTS)}


def update_rules(creditor: Creditor, flags: dict[str, bool], numbers: dict[str, int | None]) -> dict[str, list]:
    """Part payments and the self-service rules. `numbers` holds the whole numbers and the amounts
    (minor units; None: not given or not a number, a problem). A part payment's least amount must be
    above zero when part payments are on."""
    before = rules_of(creditor)
    errors = {}
    low, high = NUMBER_RANGE
    for name in (*RULE_NUMBERS, *RULE_AMOUNTS):
        value = numbers.get(name)
        if value is None or not low <= value <= high:
            errors[name] = "number" if name in RULE_NUMBERS else "amount"
    if flags.get("allow_partial_payments") and not errors.get("min_partial_payment") \
            and not numbers.get("min_partial_payment"):
        errors["min_partial_payment"] = "partial_minimum"
    if errors:
        raise InvalidData(errors)
    for name in RULE_FLAGS:
        setattr(creditor, name, bool(flags.get(name)))
    for name in (*RULE_NUMBERS, *RULE_AMOUNTS):
        setattr(creditor, name, numbers[name])
    db.session.flush()
    return _changes(before, rules_of(creditor))


def partners() -> list[Partner]:
    """The collection partners an operator set up (`flask collection partners add`), enabled ones."""
    return list(db.session.scalars(select(Partner).where(Partner.enabled.is_(True)).order_by(Partner.name)))


def policy_settings(creditor_id: int) -> dict[str, Any]:
    policy = policy_of(creditor_id)
    if policy is None:
        return dict.fromkeys(POLICY_FIELDS)
    return {name: getattr(policy, name) for name in POLICY_FIELDS}


def update_policy(creditor: Creditor, *, partner_id: int | None, enabled: bool, min_balance: int | None,
                  days_past_due: int | None, days_after_final_reminder: int | None,
                  keep_payments: bool) -> dict[str, list]:
    """The creditor's hand-off policy (`debt_collection.partners.set_policy`) with a partner among the
    enabled ones."""
    before = policy_settings(creditor.id)
    errors = {}
    partner = db.session.get(Partner, partner_id) if partner_id else None
    if partner is None or not partner.enabled:
        errors["partner_id"] = "partner"
    low, high = NUMBER_RANGE
    for name, value in (("min_balance", min_balance), ("days_past_due", days_past_due),
                        ("days_after_final_reminder", days_after_final_reminder)):
        if value is None or not low <= value <= high:
            errors[name] = "amount" if name == "min_balance" else "number"
    if errors:
        raise InvalidData(errors)
    assert partner is not None
    set_policy(creditor, partner, min_balance=min_balance, days_past_due=days_past_due,
               days_after_final_reminder=days_after_final_reminder, keep_payments=keep_payments, enabled=enabled)
    return _changes(before, policy_settings(creditor.id))
