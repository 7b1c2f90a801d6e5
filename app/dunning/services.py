"""Dunning services: a creditor's settings, plans (parsed, checked against the law, saved as new
versions), which plan an invoice follows and when its next step is due, exclusions, the customer's
contact points and preferences, German default interest, and the fall-back of a message that did not
arrive. Every function adds and flushes; the caller (a CLI, a view, `worker`) commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from babel import Locale
from sqlalchemy import func, select, update

from app.billing.models import Customer, Invoice, InvoiceStatus
from app.billing.services import changed_fields, contact_changed, contact_of, record_event
from app.core.dates import local_today
from app.core.validation import clean_email, clean_phone, is_e164, is_email
from app.creditors.models import Creditor
from app.dunning import engine, jurisdictions, templates, variants
from app.dunning.engine import reachable
from app.dunning.jurisdictions import StepRule, earliest_days
from app.dunning.models import (
    Anchor,
    Channel,
    Jurisdiction,
    Letter,
    Message,
    MessageStatus,
    Notice,
    NoticeStatus,
    Plan,
    Step,
    StepKind,
    StepVariant,
)
from app.dunning.settings import consumer_default_notice, languages_of
from app.errors import Conflict, InvalidData
from app.extensions import db
from app.i18n import SUPPORTED_LOCALES, normalise_locale
from app.models import utcnow

# --- plans: parse, check, save -------------------------------------------------------------------------

MAX_STEPS = 20
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}$")


@dataclass
class VariantDraft:
    key: str
    weight: int
    texts: dict[str, dict[str, str]]


@dataclass
class StepDraft:
    kind: str
    anchor: str
    offset_days: int
    channels: list[str]
    fee: int = 0
    deadline_days: int = 0
    starts_hand_off: bool = False
    adds_interest: bool = False
    flat_fee: bool = False
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    variants: list[VariantDraft] = field(default_factory=list)


@dataclass
class PlanDraft:
    name: str
    jurisdiction: str
    steps: list[StepDraft]
    default: bool | None = None


def _int(raw: Any, where: str, errors: dict, low: int, high: int, default: int | None = None) -> int:
    if raw is None and default is not None:
        return default
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        errors[where] = f"a whole number from {low} to {high}"
        return default or 0
    return raw


def _bool(raw: Any, where: str, errors: dict) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        errors[where] = "true or false"
        return False
    return raw


STEP_FIELDS = {"kind", "anchor", "offset_days", "channels", "fee", "deadline_days", "starts_hand_off",
               "adds_interest", "flat_fee", "texts", "variants"}
VARIANT_FIELDS = {"key", "weight", "texts"}


def parse_plan(data: Any, languages: Sequence[str]) -> PlanDraft:
    """A plan as given (a JSON or YAML document's object) checked for form: every problem at once,
    as InvalidData naming each field as the input does ('steps[2].texts.nb.sms'). The law is
    checked after (`check_plan`)."""
    errors: dict[str, str] = {}
    if not isinstance(data, Mapping):
        raise InvalidData({"plan": "an object with name, jurisdiction and steps"})
    unknown = sorted(set(data) - {"name", "jurisdiction", "steps", "default"})
    if unknown:
        errors["plan"] = f"unknown fields: {', '.join(map(str, unknown))}"
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name.strip()):
        errors["name"] = "1 to 80 letters, digits, spaces, '.', '_' or '-'"
        name = ""
    jurisdiction: str = data.get("jurisdiction") or ""
    if jurisdiction not in Jurisdiction.values():
        errors["jurisdiction"] = f"one of {', '.join(Jurisdiction.values())}"
    default = data.get("default")
    if default is not None and not isinstance(default, bool):
        errors["default"] = "true or false"
    raw_steps = data.get("steps")
    steps: list[StepDraft] = []
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
        errors["steps"] = f"a list of 1 to {MAX_STEPS} steps"
        raw_steps = []
    for n, raw in enumerate(raw_steps, start=1):
        steps.append(_parse_step(raw, f"steps[{n}]", languages, errors))
    if not errors:
        _check_order(steps, errors)
    if errors:
        raise InvalidData(errors)
    return PlanDraft(name.strip(), jurisdiction, steps, default)


def _parse_step(raw: Any, where: str, languages: Sequence[str], errors: dict) -> StepDraft:
    if not isinstance(raw, Mapping):
        errors[where] = "an object"
        return StepDraft(StepKind.REMINDER, Anchor.DUE_DATE, 0, [])
    unknown = sorted(set(raw) - STEP_FIELDS)
    if unknown:
        errors[where] = f"unknown fields: {', '.join(map(str, unknown))}"
    kind: str = raw.get("kind") or ""
    if kind not in StepKind.values():
        errors[f"{where}.kind"] = f"one of {', '.join(StepKind.values())}"
    anchor = raw.get("anchor", Anchor.DUE_DATE)
    if anchor not in Anchor.values():
        errors[f"{where}.anchor"] = f"one of {', '.join(Anchor.values())}"
    offset = _int(raw.get("offset_days"), f"{where}.offset_days", errors, -60, 365)
    if anchor == Anchor.PREVIOUS and offset < 1 and f"{where}.offset_days" not in errors:
        errors[f"{where}.offset_days"] = "at least 1 day after the previous step"
    channels = raw.get("channels")
    if (not isinstance(channels, list) or not channels or any(c not in Channel.values() for c in channels)
            or len(set(channels)) != len(channels)):
        errors[f"{where}.channels"] = f"a list of {', '.join(Channel.values())}, each once, in order of preference"
        channels = []
    fee = _int(raw.get("fee"), f"{where}.fee", errors, 0, 10_000_000, 0)
    deadline = _int(raw.get("deadline_days"), f"{where}.deadline_days", errors, 0, 90, 0)
    step = StepDraft(kind, anchor, offset, list(channels), fee, deadline,
                     _bool(raw.get("starts_hand_off"), f"{where}.starts_hand_off", errors),
                     _bool(raw.get("adds_interest"), f"{where}.adds_interest", errors),
                     _bool(raw.get("flat_fee"), f"{where}.flat_fee", errors))
    if step.starts_hand_off and deadline < 1:
        errors[f"{where}.deadline_days"] = "a step that starts the hand-off gives a deadline (1 day or more)"
    step.texts = _parse_texts(raw.get("texts"), f"{where}.texts", step.channels, languages, errors)
    step.variants = _parse_variants(raw.get("variants"), f"{where}.variants", step.channels, languages, errors)
    return step


def _parse_variants(raw: Any, where: str, channels: Sequence[str], languages: Sequence[str],
                    errors: dict) -> list[VariantDraft]:
    """A step's text variants (an experiment on its wording): each a key, a weight and the text per
    language, checked as the step's own text is."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > variants.MAX_VARIANTS:
        errors[where] = f"a list of at most {variants.MAX_VARIANTS} variants"
        return []
    found: list[VariantDraft] = []
    for n, one in enumerate(raw, start=1):
        here = f"{where}[{n}]"
        if not isinstance(one, Mapping) or set(one) - VARIANT_FIELDS:
            errors[here] = "an object with key, weight and texts"
            continue
        key = one.get("key")
        if not isinstance(key, str) or not variants.KEY.match(key):
            errors[f"{here}.key"] = "1 to 40 small letters, digits, '_' or '-'"
            key = ""
        elif any(other.key == key for other in found):
            errors[f"{here}.key"] = "each variant of a step has its own key"
        weight = _int(one.get("weight"), f"{here}.weight", errors, *variants.WEIGHT_RANGE, 1)
        found.append(VariantDraft(key, weight, _parse_texts(one.get("texts"), f"{here}.texts", channels, languages,
                                                            errors)))
    return found


def _parse_texts(raw: Any, where: str, channels: Sequence[str], languages: Sequence[str],
                 errors: dict) -> dict[str, dict[str, str]]:
    if not isinstance(raw, Mapping):
        errors[where] = f"an object with a text per language ({', '.join(languages)})"
        return {}
    texts: dict[str, dict[str, str]] = {}
    for locale, parts in raw.items():
        if locale not in SUPPORTED_LOCALES:
            errors[f"{where}.{locale}"] = f"a language the portal serves: {', '.join(SUPPORTED_LOCALES)}"
            continue
        if not isinstance(parts, Mapping) or set(parts) - set(templates.PARTS):
            errors[f"{where}.{locale}"] = f"an object with {', '.join(templates.PARTS)}"
            continue
        texts[locale] = {}
        for part, text in parts.items():
            key = f"{where}.{locale}.{part}"
            if not isinstance(text, str):
                errors[key] = "text"
                continue
            text = text.strip()
            if len(text) > templates.MAX_LENGTH[part]:
                errors[key] = f"at most {templates.MAX_LENGTH[part]} characters"
            unknown = templates.unknown_variables(text)
            if unknown:
                errors[key] = (f"unknown variable {{{unknown[0]}}}; the variables are "
                               + ", ".join(f"{{{name}}}" for name in templates.VARIABLES))
            if text:
                texts[locale][part] = text
    needed = sorted({part for channel in channels for part in templates.NEEDS.get(channel, ())})
    for locale in languages:
        if locale not in raw:
            errors.setdefault(f"{where}.{locale}", f"missing: every step needs its text in each of the creditor's "
                                                   f"languages ({', '.join(languages)})")
            continue
        for part in needed:
            if not texts.get(locale, {}).get(part):
                errors.setdefault(f"{where}.{locale}.{part}", "missing: the step's channels need it")
    return texts


def _check_order(steps: list[StepDraft], errors: dict) -> None:
    earliest = earliest_days([(s.anchor, s.offset_days, s.deadline_days) for s in steps])
    rank = -1
    for n, (step, day) in enumerate(zip(steps, earliest, strict=True), start=1):
        where = f"steps[{n}]"
        if step.kind == StepKind.PRE_DUE and (step.anchor != Anchor.DUE_DATE or step.offset_days >= 0):
            errors[f"{where}.offset_days"] = "a pre-due nudge goes before the due date: a negative offset_days " \
                                             "from the due date"
        elif step.kind != StepKind.PRE_DUE and day < 1:
            errors[f"{where}.offset_days"] = f"a {step.kind} goes after the due date (this one can go {day} days " \
                                             "after it)"
        if StepKind(step.kind).rank < rank:
            errors[f"{where}.kind"] = "steps go in order: nudges, reminders, the final reminder, the collection warning"
        rank = max(rank, StepKind(step.kind).rank)


def step_rules(steps: Sequence[StepDraft | Step]) -> list[StepRule]:
    earliest = earliest_days([(s.anchor, s.offset_days, s.deadline_days) for s in steps])
    return [StepRule(s.kind, s.anchor, s.offset_days, tuple(s.channels), s.fee, s.deadline_days, s.starts_hand_off,
                     s.adds_interest, s.flat_fee, dict(s.texts), day) for s, day in zip(steps, earliest, strict=True)]


def check_plan(draft: PlanDraft, creditor: Creditor, day: date) -> list[jurisdictions.Violation]:
    """Every rule of the plan's jurisdiction that it breaks (none for the "none" profile). A step's text
    variants are checked as its own text: each variant's texts in the step's place, a problem of its
    text named under the variant ('steps[3].variants[1].texts.nb.body')."""
    notice = consumer_default_notice(creditor)
    found = jurisdictions.check_plan(draft.jurisdiction, step_rules(draft.steps), currency=creditor.currency,
                                     day=day, consumer_default_notice=notice)
    for n, step in enumerate(draft.steps, start=1):
        for v, variant in enumerate(step.variants, start=1):
            swapped = [StepDraft(**{**other.__dict__, "texts": variant.texts}) if other is step else other
                       for other in draft.steps]
            prefix = f"steps[{n}].texts"
            for violation in jurisdictions.check_plan(draft.jurisdiction, step_rules(swapped),
                                                      currency=creditor.currency, day=day,
                                                      consumer_default_notice=notice):
                if violation.field.startswith(prefix):
                    found.append(jurisdictions.Violation(
                        violation.rule, f"steps[{n}].variants[{v}].texts" + violation.field[len(prefix):],
                        violation.detail))
    return found


def save_plan(creditor: Creditor, data: Any, *, actor: str, today: date | None = None) -> Plan:
    """Parse, check and save a plan as the next version of its name (version 1 if new). Refused with
    InvalidData, nothing saved, when the form is wrong or a rule of its jurisdiction is broken (each
    problem under its field, the rule and its section in the message). The first plan of a
    creditor, or one given with "default": true, becomes the default."""
    today = today or local_today(creditor.country, utcnow())
    draft = parse_plan(data, languages_of(creditor))
    violations = check_plan(draft, creditor, today)
    if violations:
        errors: dict[str, str] = {}
        for violation in violations:
            errors[violation.field] = (errors[violation.field] + "; " if violation.field in errors else "") \
                + violation.message
        raise InvalidData(errors)
    latest = db.session.scalar(select(func.max(Plan.version)).where(Plan.creditor_id == creditor.id,
                                                                    Plan.name == draft.name)) or 0
    plan = Plan(creditor_id=creditor.id, name=draft.name, version=latest + 1, jurisdiction=draft.jurisdiction,
                is_default=False, created_by=actor[:120], created_at=utcnow())
    for position, step in enumerate(draft.steps, start=1):
        plan.steps.append(Step(position=position, kind=step.kind, anchor=step.anchor, offset_days=step.offset_days,
                               channels=list(step.channels), fee=step.fee, deadline_days=step.deadline_days,
                               starts_hand_off=step.starts_hand_off, adds_interest=step.adds_interest,
                               flat_fee=step.flat_fee, texts=step.texts,
                               variants=[StepVariant(key=v.key, weight=v.weight, texts=v.texts, created_at=utcnow())
                                         for v in step.variants]))
    db.session.add(plan)
    db.session.flush()
    current = default_plan(creditor.id)
    if draft.default or current is None or (draft.default is None and current.name == plan.name):
        set_default(creditor, plan)
    return plan


def plans_of(creditor_id: int) -> list[Plan]:
    return list(db.session.scalars(select(Plan).where(Plan.creditor_id == creditor_id)
                                   .order_by(Plan.name, Plan.version)))


def find_plan(creditor_id: int, name: str, version: int | None = None) -> Plan | None:
    """A plan of this creditor by name, its latest version unless one is given."""
    query = select(Plan).where(Plan.creditor_id == creditor_id, Plan.name == name)
    query = query.where(Plan.version == version) if version else query.order_by(Plan.version.desc())
    return db.session.scalars(query.limit(1)).first()


def default_plan(creditor_id: int) -> Plan | None:
    return db.session.scalar(select(Plan).where(Plan.creditor_id == creditor_id, Plan.is_default.is_(True)))


def set_default(creditor: Creditor, plan: Plan | None) -> None:
    """Make `plan` the plan new bills start with (None: no default; the run then enrols no bill)."""
    if plan is not None and plan.creditor_id != creditor.id:
        raise InvalidData({"plan": "not a plan of this creditor"})
    db.session.execute(update(Plan).where(Plan.creditor_id == creditor.id, Plan.is_default.is_(True))
                       .values(is_default=False))
    db.session.flush()
    if plan is not None:
        plan.is_default = True
    db.session.flush()


def plan_as_data(plan: Plan) -> dict:
    """The plan as the input it could be saved from (`flask dunning plans show`, the API later)."""
    return {"name": plan.name, "version": plan.version, "jurisdiction": plan.jurisdiction,
            "default": plan.is_default,
            "steps": [{"kind": s.kind, "anchor": s.anchor, "offset_days": s.offset_days, "channels": list(s.channels),
                       "fee": s.fee, "deadline_days": s.deadline_days, "starts_hand_off": s.starts_hand_off,
                       "adds_interest": s.adds_interest, "flat_fee": s.flat_fee, "texts": s.texts,
                       **({"variants": [{"key": v.key, "weight": v.weight, "texts": v.texts}
                                        for v in s.variants if v.active]}
                          if any(v.active for v in s.variants) else {})}
                      for s in plan.steps]}


# --- the schedule ------------------------------------------------------------------------------------


def step_date(step: Step | StepDraft, due_date: date, previous: tuple[date, int] | None) -> date:
    """The day a step is due: its offset from the due date or from the day the previous step went,
    never before the previous step's deadline has passed (`previous`: the day it went, its deadline
    days). The run's rule (`engine.step_day`), for a saved or drafted step."""
    if previous is None:
        return due_date + timedelta(days=step.offset_days)
    return engine.step_day(step, due_date, *previous)


def first_step(steps: Sequence[Step], due_date: date, today: date) -> tuple[int, date] | None:
    """Where a bill enrolled today starts: its first step, except pre-due nudges whose day has passed."""
    for step in steps:
        day = step_date(step, due_date, None)
        if step.kind == StepKind.PRE_DUE and day < today:
            continue
        return step.position, max(day, today)
    return None


def assign_plan(invoice: Invoice, plan: Plan, *, actor: str, today: date) -> None:
    """Let this plan (a version) remind the invoice from its first step. Refused once a step of another
    plan went out (an invoice keeps the plan version it started with)."""
    if plan.creditor_id != invoice.creditor_id:
        raise InvalidData({"plan": "not a plan of this invoice's creditor"})
    if invoice.is_closed or invoice.status == InvoiceStatus.PAID:
        raise InvalidData({"invoice": f"the invoice is {invoice.status}"})
    sent = db.session.scalar(select(Notice.plan_id).where(Notice.invoice_id == invoice.id).limit(1))
    if sent is not None and sent != plan.id:
        raise Conflict(f"invoice {invoice.number} has had reminders of another plan version; it keeps that one")
    invoice.dunning_plan_id = plan.id
    _schedule(invoice, plan, today)
    record_event(invoice, "dunning_plan_set", actor, plan=plan.name, version=plan.version)
    db.session.flush()


def _schedule(invoice: Invoice, plan: Plan, today: date) -> None:
    """Set the invoice's next step from its notices: the step after the last one sent, or where it starts."""
    last = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id, Notice.plan_id == plan.id)
                              .order_by(Notice.position.desc()).limit(1)).first()
    steps = list(plan.steps)
    if last is None:
        found = first_step(steps, invoice.due_date, today)
    else:
        after = [s for s in steps if s.position > last.position]
        previous = next(s for s in steps if s.position == last.position)
        found = (after[0].position, step_date(after[0], invoice.due_date, (last.decided_on, previous.deadline_days))) \
            if after else None
    invoice.dunning_next_position, invoice.dunning_next_on = (found if found else (None, None))


def reschedule(invoice: Invoice, today: date) -> None:
    """Look at the invoice again (after it was reopened, recalled from collection, included again):
    its next step from the notices sent. Nothing for an invoice without a plan, or an excluded one."""
    if invoice.dunning_plan_id is None or invoice.dunning_excluded or invoice.customer.dunning_excluded:
        invoice.dunning_next_on = invoice.dunning_next_position = None
    else:
        plan = db.session.get(Plan, invoice.dunning_plan_id)
        assert plan is not None  # plans are never deleted while invoices follow them (RESTRICT)
        _schedule(invoice, plan, today)
    db.session.flush()


def exclude_invoice(invoice: Invoice, excluded: bool, *, actor: str, today: date) -> None:
    """Take the invoice out of the run (no more steps), or put it back where it was."""
    invoice.dunning_excluded = excluded
    record_event(invoice, "dunning_excluded" if excluded else "dunning_included", actor)
    reschedule(invoice, today)


def exclude_customer(customer: Customer, excluded: bool, *, actor: str, today: date) -> int:
    """Take every bill of the customer out of the run, or put them back; returns how many bills."""
    customer.dunning_excluded = excluded
    invoices = list(db.session.scalars(select(Invoice).where(Invoice.customer_id == customer.id,
                                                             Invoice.dunning_plan_id.is_not(None))))
    for invoice in invoices:
        record_event(invoice, "dunning_excluded" if excluded else "dunning_included", actor, customer=True)
        reschedule(invoice, today)
    return len(invoices)


def hand_off_not_before(invoice_id: int) -> date | None:
    """The first day a hand-off may happen by the plan: the day after the deadline of the last notice
    that started the hand-off clock (Norway: the inkassovarsel's); None when no such notice went."""
    deadline = db.session.scalar(
        select(Notice.deadline).join(Step, Step.id == Notice.step_id)
        .where(Notice.invoice_id == invoice_id, Step.starts_hand_off.is_(True),
               Notice.status != NoticeStatus.SKIPPED).order_by(Notice.position.desc()).limit(1))
    return deadline + timedelta(days=1) if deadline else None


@dataclass(frozen=True)
class NextStep:
    """What happens next to an invoice by its plan (the bill page and the API show it)."""

    position: int
    on: date
    kind: str
    channels: tuple[str, ...]
    fee: int
    deadline_days: int


def next_step(invoice: Invoice) -> NextStep | None:
    if invoice.dunning_plan_id is None or invoice.dunning_next_position is None or invoice.dunning_next_on is None:
        return None
    step = db.session.scalar(select(Step).where(Step.plan_id == invoice.dunning_plan_id,
                                                Step.position == invoice.dunning_next_position))
    if step is None:
        return None
    return NextStep(step.position, invoice.dunning_next_on, step.kind, tuple(step.channels), step.fee,
                    step.deadline_days)


# --- contact points and preferences ----------------------------------------------------------------------

POSTCODES = {"NO": r"\d{4}", "DK": r"\d{4}", "SE": r"\d{3} ?\d{2}", "FI": r"\d{5}", "DE": r"\d{5}",
             "AT": r"\d{4}", "CH": r"\d{4}", "NL": r"\d{4} ?[A-Z]{2}", "IE": r"[A-Z]\d[\dW] ?[A-Z\d]{4}",
             "FR": r"\d{5}", "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"}
ADDRESS_FIELDS = ("line1", "line2", "postcode", "city", "country")
PREFERENCE_FIELDS = ("preferred_channel", "preferred_locale", "time_zone", "email_allowed", "sms_allowed",
                     "electronic_notices_allowed")


def _countries() -> frozenset[str]:
    return frozenset(code for code in Locale("en").territories
                     if isinstance(code, str) and len(code) == 2 and code.isalpha())


def check_address(address: Any) -> tuple[dict[str, str | None], dict[str, str]]:
    """A postal address checked: (cleaned, errors by 'address.<field>'). A letter needs line1, postcode
    (where the country has them), city and country; the postcode in the country's form."""
    errors: dict[str, str] = {}
    if not isinstance(address, Mapping):
        return {}, {"address": f"an object with {', '.join(ADDRESS_FIELDS)}"}
    cleaned = {name: (str(address.get(name) or "").strip() or None) for name in ADDRESS_FIELDS}
    country = (cleaned["country"] or "").upper() or None
    cleaned["country"] = country
    if country is None or country not in _countries():
        errors["address.country"] = "a country code (ISO 3166, two letters: NO, DE, IE)"
    if not cleaned["line1"]:
        errors["address.line1"] = "required"
    if not cleaned["city"]:
        errors["address.city"] = "required"
    for name, limit in (("line1", 200), ("line2", 200), ("city", 100), ("postcode", 16)):
        value = cleaned[name]
        if value and len(value) > limit:
            errors[f"address.{name}"] = f"at most {limit} characters"
    postcode = (cleaned["postcode"] or "").upper()
    pattern = POSTCODES.get(country or "")
    if pattern and not re.fullmatch(pattern, postcode):
        errors["address.postcode"] = f"not a postcode of {country}"
    elif not pattern and postcode and not re.fullmatch(r"[A-Z0-9][A-Z0-9 -]{1,15}", postcode):
        errors["address.postcode"] = "letters, digits, spaces and '-'"
    cleaned["postcode"] = postcode or None
    return cleaned, errors


def update_contact_points(customer: Customer, data: Mapping[str, Any]) -> Customer:
    """Change the customer's contact points and preferences given in `data` (others unchanged):
    email, phone (E.164 mobile), address {line1, line2, postcode, city, country}, preferred_channel,
    preferred_locale, time_zone and the consents (email_allowed, sms_allowed,
    electronic_notices_allowed). Every problem at once, by field, nothing changed. (Confirming a new
    address or number by a code, and the unsubscribe link, come with the bill page's form.)"""
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - {"email", "phone", "address", *PREFERENCE_FIELDS})
    if unknown:
        errors["contact"] = f"unknown fields: {', '.join(unknown)}"
    changes: dict[str, Any] = {}
    if "email" in data:
        email = clean_email(data["email"])
        if email is not None and not is_email(email):
            errors["email"] = "not an e-mail address"
        changes["email"] = email
    if "phone" in data:
        phone = clean_phone(data["phone"])
        if phone is not None and not is_e164(phone):
            errors["phone"] = "not a mobile number in international form (E.164, e.g. +4791234567)"
        changes["phone"] = phone
    if "address" in data:
        if data["address"] is None:
            changes.update({f"address_{n}" if n.startswith("line") else n: None for n in ADDRESS_FIELDS})
        else:
            cleaned, problems = check_address(data["address"])
            errors.update(problems)
            changes.update({("address_" + n if n.startswith("line") else n): v for n, v in cleaned.items()})
    if "preferred_channel" in data:
        if data["preferred_channel"] not in (None, *Channel.values()):
            errors["preferred_channel"] = f"one of {', '.join(Channel.values())}, or none"
        changes["preferred_channel"] = data["preferred_channel"]
    if "preferred_locale" in data:
        locale = normalise_locale(data["preferred_locale"]) if data["preferred_locale"] else None
        if data["preferred_locale"] and locale is None:
            errors["preferred_locale"] = f"one of {', '.join(SUPPORTED_LOCALES)}"
        changes["preferred_locale"] = locale
    if "time_zone" in data:
        zone = data["time_zone"] or None
        if zone is not None:
            try:
                ZoneInfo(str(zone))
            except (ZoneInfoNotFoundError, ValueError):
                errors["time_zone"] = "a time zone name (Europe/Oslo)"
        changes["time_zone"] = zone
    for name in ("email_allowed", "sms_allowed", "electronic_notices_allowed"):
        if name in data:
            if not isinstance(data[name], bool):
                errors[name] = "true or false"
            changes[name] = data[name]
    if errors:
        raise InvalidData(errors)
    before = contact_of(customer)
    for name, value in changes.items():
        setattr(customer, name, value)
    db.session.flush()
    if contact_of(customer) != before:
        contact_changed.send(customer, fields=changed_fields(before, contact_of(customer)))
    return customer


# --- fall-back: a message that did not arrive ----------------------------------------------------------


def fall_back(message: Message | Notice, reason: str, *, now: datetime | None = None) -> Message | None:
    """A message did not reach the customer (a bounce, a failed SMS: `reason` says which): mark it so
    and send its notices by the next channel their steps list after this one that the customer can be
    reached on, or by letter when none is left; a new message (through the outbox, or a pending
    letter). Given a notice, its message falls back. Returns the new message, or None when the
    message fell back before, or when it was a letter (nothing comes after a letter) or no way is left.

    The provider's status callbacks call this (a later change wires them); it adds and flushes."""
    if isinstance(message, Notice):
        found = db.session.get(Message, message.message_id) if message.message_id else None
        if found is None:
            return None
        message = found
    now = now or utcnow()
    if message.status in MessageStatus.UNDELIVERED or db.session.scalar(
            select(Message.id).where(Message.replaces_id == message.id)):
        return None  # fell back already: a repeated callback
    message.status = MessageStatus.BOUNCED if reason == "bounced" else MessageStatus.FAILED
    message.failure, message.status_at = reason[:300], now
    notices = list(db.session.scalars(select(Notice).where(Notice.message_id == message.id).order_by(Notice.id)))
    for notice in notices:
        notice.status = NoticeStatus.BOUNCED if reason == "bounced" else NoticeStatus.FAILED
    db.session.flush()
    if message.channel == Channel.LETTER or not notices:
        return None
    customer = db.session.get(Customer, message.customer_id)
    creditor = db.session.get(Creditor, message.creditor_id)
    assert customer is not None and creditor is not None  # kept by their foreign keys
    step_ids = {notice.step_id for notice in notices}
    steps = {step.id: step for step in db.session.scalars(select(Step).where(Step.id.in_(step_ids)))}
    lead = max(notices, key=lambda n: (StepKind(n.kind).rank, -n.id))
    step = steps[lead.step_id]
    plan = db.session.get(Plan, lead.plan_id)
    legal = lead.kind == StepKind.COLLECTION_WARNING and plan is not None and plan.jurisdiction == Jurisdiction.NO
    # The channels after this one in the step's order; a letter when none of them reaches the customer.
    later = step.channels[step.channels.index(message.channel) + 1:] if message.channel in step.channels else []
    channel = next((c for c in [*later, Channel.LETTER] if reachable(customer, c, legal=legal)), None)
    if channel is None:
        return None
    today = local_today(creditor.country, now)
    new = engine.write_fallback(creditor, customer, message, notices, channel, now=now, today=today,
                                deadline_days={n.id: steps[n.step_id].deadline_days for n in notices})
    for invoice_id in {n.invoice_id for n in notices}:
        invoice = db.session.get(Invoice, invoice_id)
        assert invoice is not None  # a notice's invoice (CASCADE would have removed the notice)
        record_event(invoice, "reminder_fell_back", "dunning", channel=channel, reason=reason[:100],
                     message=new.id, replaces=message.id)
    db.session.flush()
    return new


def letters_pending(creditor_id: int) -> list[Letter]:
    """The creditor's letters waiting for the printer, oldest first (the print batch takes them)."""
    return list(db.session.scalars(select(Letter).where(Letter.creditor_id == creditor_id,
                                                        Letter.status == "pending").order_by(Letter.id)))


# --- previewing a step's text -----------------------------------------------------------------------------


def preview_step(creditor: Creditor, plan: Plan | Any, position: int, locale: str, *,
                 invoice: Invoice | None = None, today: date | None = None,
                 variant: str | None = None) -> templates.Rendered:
    """A step's text filled for a real bill of the creditor, or for a sample one: a saved plan, or a
    plan as given (checked for form first, so a bad one is refused with its fields before anything
    is shown). Nothing is saved and no link is issued (the link shows as an example address). With
    `variant`, that text variant of the step (InvalidData when the step has no variant of that key)."""
    today = today or local_today(creditor.country, utcnow())
    steps: Sequence[Step | StepDraft]
    if isinstance(plan, Plan):
        steps, jurisdiction = list(plan.steps), plan.jurisdiction
    else:
        draft = parse_plan(plan, languages_of(creditor))
        steps, jurisdiction = draft.steps, draft.jurisdiction
    if not 1 <= position <= len(steps):
        raise InvalidData({"step": f"a step from 1 to {len(steps)}"})
    step = steps[position - 1]
    texts = step.texts
    if variant is not None:
        chosen = [v for v in step.variants if v.key == variant]
        if not chosen:
            raise InvalidData({"variant": "not a variant of this step"})
        texts = chosen[0].texts
    if locale not in texts:
        raise InvalidData({"locale": f"the step has texts in {', '.join(sorted(texts))}"})
    if invoice is not None and invoice.creditor_id != creditor.id:
        raise InvalidData({"invoice": "not an invoice of this creditor"})
    deadline = today + timedelta(days=step.deadline_days) if step.deadline_days else None
    example = f"{(creditor.portal_base_url or 'https://pay.example').rstrip('/')}/l/EXAMPLE"
    support = creditor.support_phone or creditor.support_email or ""
    if invoice is None:
        facts = templates.Facts("Kari Nordmann", "10001234", 123450 + step.fee, creditor.currency,
                                today - timedelta(days=max(step.offset_days, 0)), deadline, step.fee, example,
                                creditor.name, "1000123456", jurisdiction, support)
    else:
        facts = templates.Facts(invoice.customer.name, invoice.number, invoice.balance + step.fee, invoice.currency,
                                invoice.due_date, deadline, step.fee, example, creditor.name,
                                invoice.payment_reference, jurisdiction, support)
    return templates.render(texts, facts, locale)


# --- the plans the portal ships ------------------------------------------------------------------------------

DEFAULT_PLANS = {"NO": "norway.yaml", "DE": "germany.yaml", "none": "no_rules.yaml"}
#: PyYAML's safe loader, in C (libyaml) where PyYAML was built with it: ten times faster than in Python.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def shipped_plan(jurisdiction: str) -> dict:
    """The lawful example plan of a jurisdiction (app/dunning/default_plans: texts in en, nb and de), as
    data to save with `save_plan` (the demo creditors get them; a creditor may start from one)."""
    path = Path(__file__).parent / "default_plans" / DEFAULT_PLANS[jurisdiction]
    return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506 (SAFE_LOADER is safe)


# --- agents: skip or postpone a bill's next step --------------------------------------------------------

MAX_POSTPONE_DAYS = 180
MAX_REASON = 200


def _next_of(invoice: Invoice) -> Step:
    """The bill's next step, or InvalidData when none is planned (no plan, excluded, plan done, closed)."""
    if invoice.is_closed or invoice.status == InvoiceStatus.PAID or invoice.balance <= 0:
        raise InvalidData({"invoice": "settled"})
    if invoice.dunning_plan_id is None or invoice.dunning_next_position is None or invoice.dunning_next_on is None:
        raise InvalidData({"step": "no_step"})
    step = db.session.scalar(select(Step).where(Step.plan_id == invoice.dunning_plan_id,
                                                Step.position == invoice.dunning_next_position))
    if step is None:
        raise InvalidData({"step": "no_step"})
    return step


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidData({"reason": "required"})
    if len(reason) > MAX_REASON:
        raise InvalidData({"reason": "too_long"})
    return reason


def skip_next_step(invoice: Invoice, *, actor: str, reason: str | None, today: date,
                   now: datetime | None = None) -> Notice:
    """An agent skips the bill's next step: it is recorded as a notice `skipped` (nothing sent, no fee;
    a skipped collection warning starts no hand-off clock, so a bill whose plan needs one is not handed
    off), and the step after it follows from today, as if this one had gone without a deadline.
    InvalidData (nothing changed) when no step is planned or without a reason. The caller checks the
    agent's role and writes the audit entry."""
    reason = _reason(reason)
    step = _next_of(invoice)
    now = now or utcnow()
    if db.session.scalar(select(Notice.id).where(Notice.invoice_id == invoice.id, Notice.plan_id == step.plan_id,
                                                 Notice.position == step.position)) is not None:
        raise Conflict(f"step {step.position} of invoice {invoice.number} went out already")
    notice = Notice(creditor_id=invoice.creditor_id, invoice_id=invoice.id, customer_id=invoice.customer_id,
                    plan_id=step.plan_id, step_id=step.id, position=step.position, kind=step.kind,
                    status=NoticeStatus.SKIPPED, channel=step.channels[0], channel_index=0, message_id=None,
                    decided_on=today, sent_at=now, deadline=None, fee=0, interest=0)
    db.session.add(notice)
    following = db.session.scalar(select(Step).where(Step.plan_id == step.plan_id,
                                                     Step.position == step.position + 1))
    if following is None:
        invoice.dunning_next_position = invoice.dunning_next_on = None
    else:
        invoice.dunning_next_position = following.position
        invoice.dunning_next_on = engine.step_day(following, invoice.due_date, today, 0)
    record_event(invoice, "dunning_step_skipped", actor, step=step.position, step_kind=step.kind, reason=reason,
                 next_on=invoice.dunning_next_on.isoformat() if invoice.dunning_next_on else None)
    db.session.flush()
    return notice


def postpone_next_step(invoice: Invoice, until: date | None, *, actor: str, reason: str | None,
                       today: date) -> None:
    """An agent moves the bill's next step to a later day (after the day it is due now, at most
    MAX_POSTPONE_DAYS from today): the run looks at it again then. InvalidData (nothing changed) when
    no step is planned, the day is not later, or without a reason."""
    reason = _reason(reason)
    step = _next_of(invoice)
    current = invoice.dunning_next_on
    assert current is not None  # _next_of checked
    if until is None or until <= max(current, today) or until > today + timedelta(days=MAX_POSTPONE_DAYS):
        raise InvalidData({"until": "range"})
    invoice.dunning_next_on = until
    record_event(invoice, "dunning_step_postponed", actor, step=step.position, step_kind=step.kind,
                 was=current.isoformat(), until=until.isoformat(), reason=reason)
    db.session.flush()
