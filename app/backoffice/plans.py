"""The creditor console's reminder plans: a plan version as the console's form shows it and back
(`form_values`, `data_from_form`: the data `dunning.services.save_plan` takes, as the CLI gives it), each
problem of that service in the agent's language under its form field (`problems`), the open bills that
follow each version, and the jurisdiction's rules with their sources.

The checks are the dunning services' own (`parse_plan`, `check_plan`, `save_plan`): the console adds
none of its own except reading an amount typed in major units."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from babel import Locale
from babel.numbers import format_decimal, format_percent
from flask_babel import gettext as _
from sqlalchemy import func, select

from app.analytics.intervals import Interval
from app.billing.models import Invoice, InvoiceStatus
from app.creditors.models import Creditor
from app.dunning import jurisdictions, templates
from app.dunning.models import Anchor, Jurisdiction, Plan
from app.dunning.services import MAX_STEPS, check_plan, parse_plan, plan_as_data, shipped_plan
from app.dunning.settings import languages_of
from app.dunning.variants import MAX_VARIANTS
from app.errors import InvalidData
from app.extensions import db
from app.i18n import SUPPORTED_LOCALES
from app.money import parse_amount, to_decimal
from app.templating import current_format_locale

#: channels a step may name, in the form's three choices (first, second, third)
CHANNEL_CHOICES = 3
FLAGS = ("starts_hand_off", "adds_interest", "flat_fee")
OPEN = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.DISPUTED, InvoiceStatus.ON_HOLD)


def open_bills(creditor_id: int) -> dict[int, int]:
    """How many open bills (live ones) follow each plan version of the creditor, by plan id."""
    rows = db.session.execute(
        select(Invoice.dunning_plan_id, func.count()).where(
            Invoice.creditor_id == creditor_id, Invoice.dunning_plan_id.is_not(None),
            Invoice.status.in_(OPEN), Invoice.livemode.is_(True))
        .group_by(Invoice.dunning_plan_id)).all()
    return {plan_id: count for plan_id, count in rows if plan_id is not None}


def plan_of(creditor_id: int, plan_id: int) -> Plan | None:
    """A plan version of this creditor (None for another creditor's)."""
    return db.session.scalar(select(Plan).where(Plan.id == plan_id, Plan.creditor_id == creditor_id))


# --- the form ---------------------------------------------------------------------------------------------


def form_values(data: Mapping[str, Any], currency: str) -> dict[str, str]:
    """Plan data (`plan_as_data`, a shipped plan) as the form's fields, with one empty step and one
    empty variant per step to add."""
    values: dict[str, str] = {"name": str(data.get("name") or ""), "jurisdiction": str(data.get("jurisdiction") or "")}
    steps = list(data.get("steps") or [])
    for n, step in enumerate(steps, start=1):
        p = f"s{n}-"
        values[p + "kind"] = step.get("kind", "")
        values[p + "anchor"] = step.get("anchor", Anchor.DUE_DATE)
        values[p + "offset_days"] = str(step.get("offset_days", ""))
        for i, channel in enumerate(step.get("channels") or [], start=1):
            values[f"{p}channel{i}"] = channel
        fee = step.get("fee") or 0
        values[p + "fee"] = str(to_decimal(fee, currency)) if fee else ""
        values[p + "deadline_days"] = str(step.get("deadline_days") or 0)
        for flag in FLAGS:
            values[p + flag] = "on" if step.get(flag) else ""
        _texts_to_form(values, p, step.get("texts") or {})
        for m, variant in enumerate(step.get("variants") or [], start=1):
            v = f"{p}v{m}-"
            values[v + "key"] = variant.get("key", "")
            values[v + "weight"] = str(variant.get("weight", 1))
            _texts_to_form(values, v, variant.get("texts") or {})
        values[p + "variants"] = str(min(len(step.get("variants") or []) + 1, MAX_VARIANTS))
    values["steps"] = str(min(len(steps) + 1, MAX_STEPS))
    return values


def _texts_to_form(values: dict[str, str], prefix: str, texts: Mapping[str, Mapping[str, str]]) -> None:
    for locale, parts in texts.items():
        for part in templates.PARTS:
            if parts.get(part):
                values[f"{prefix}{locale}-{part}"] = parts[part]


def form_languages(creditor: Creditor, shown: str | Mapping[str, Any] = "") -> list[str]:
    """The languages the form writes texts in: the creditor's, and those the version it starts from has
    (a text in another language is kept, not dropped, when a version is edited). `shown`: the plan data,
    or the form's own list (its hidden field)."""
    found = list(languages_of(creditor))
    if isinstance(shown, str):
        extra = [code.strip() for code in shown.split(",")]
    else:
        extra = [locale for step in shown.get("steps") or [] for locale in (step.get("texts") or {})]
    for code in extra:
        if code in SUPPORTED_LOCALES and code not in found:
            found.append(code)
    return found


def rows(values: Mapping[str, str]) -> int:
    """How many step rows the form shows (at least one, at most a plan's steps)."""
    return max(_count(values, "steps", MAX_STEPS), 1)


def _count(form: Mapping[str, str], name: str, most: int) -> int:
    raw = (form.get(name) or "").strip()
    return min(int(raw), most) if re.fullmatch(r"[0-9]{1,6}", raw) else 0


def _number(raw: str | None) -> Any:
    """A whole number typed (the service names anything else as the field's problem)."""
    raw = (raw or "").strip()
    return int(raw) if re.fullmatch(r"-?[0-9]{1,9}", raw) else raw or None


@dataclass
class FormData:
    """The plan data read from the form, and where each step and variant came from in it (a removed or
    empty row leaves a gap: the service's 'steps[2]' is the form's second used row)."""

    data: dict[str, Any]
    step_rows: list[int]
    variant_rows: dict[int, list[int]]
    problems: dict[str, str]


def data_from_form(form: Mapping[str, str], creditor: Creditor, languages: list[str]) -> FormData:
    """The plan data the form holds (for `save_plan`), and the form's own problems (an amount that is
    not one)."""
    steps: list[dict[str, Any]] = []
    step_rows: list[int] = []
    variant_rows: dict[int, list[int]] = {}
    problems: dict[str, str] = {}
    for n in range(1, _count(form, "steps", MAX_STEPS) + 1):
        p = f"s{n}-"
        if form.get(p + "remove") or not (form.get(p + "kind") or "").strip():
            continue
        fee_text = form.get(p + "fee") or ""
        try:
            fee: Any = parse_amount(fee_text, creditor.currency) or 0
        except ValueError:
            problems[p + "fee"] = _("Please enter an amount, such as 35.00.")
            fee = 0
        step: dict[str, Any] = {
            "kind": form.get(p + "kind"), "anchor": form.get(p + "anchor") or Anchor.DUE_DATE,
            "offset_days": _number(form.get(p + "offset_days")),
            "channels": [c for c in (form.get(f"{p}channel{i}") for i in range(1, CHANNEL_CHOICES + 1)) if c],
            "fee": fee, "deadline_days": _number(form.get(p + "deadline_days")) or 0,
            **{flag: bool(form.get(p + flag)) for flag in FLAGS},
            "texts": _texts_from_form(form, p, languages)}
        used: list[int] = []
        found_variants = []
        for m in range(1, _count(form, p + "variants", MAX_VARIANTS) + 1):
            v = f"{p}v{m}-"
            key = (form.get(v + "key") or "").strip()
            texts = _texts_from_form(form, v, languages)
            if form.get(v + "remove") or (not key and not texts):
                continue
            found_variants.append({"key": key, "weight": _number(form.get(v + "weight")) or 1, "texts": texts})
            used.append(m)
        if found_variants:
            step["variants"] = found_variants
        steps.append(step)
        step_rows.append(n)
        variant_rows[n] = used
    data = {"name": (form.get("name") or "").strip(), "jurisdiction": form.get("jurisdiction") or "",
            "steps": steps}
    return FormData(data, step_rows, variant_rows, problems)


def _texts_from_form(form: Mapping[str, str], prefix: str, languages: list[str]) -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = {}
    for locale in languages:
        parts = {part: form.get(f"{prefix}{locale}-{part}", "").replace("\r\n", "\n").strip()
                 for part in templates.PARTS}
        parts = {part: text for part, text in parts.items() if text}
        if parts:
            texts[locale] = parts
    return texts


# --- problems in words ----------------------------------------------------------------------------------------

FIELD = re.compile(r"^steps\[(\d+)\](?:\.variants\[(\d+)\])?(?:\.(.+))?$")


def form_field(name: str, found: FormData) -> str:
    """The form field a service's field name ('steps[2].variants[1].texts.nb.sms') stands for."""
    match = FIELD.match(name)
    if not match:
        return name if name in ("name", "jurisdiction") else "plan"
    row = found.step_rows[int(match.group(1)) - 1] if int(match.group(1)) <= len(found.step_rows) else 1
    prefix = f"s{row}-"
    if match.group(2):
        used = found.variant_rows.get(row, [])
        index = int(match.group(2))
        prefix += f"v{used[index - 1] if index <= len(used) else index}-"
    rest = match.group(3) or ""
    if rest.startswith("texts."):
        return prefix + rest[len("texts."):].replace(".", "-")
    if rest == "channels":
        return prefix + "channel1"
    if rest == "variants":  # the step's variants as a whole: shown at the first variant's key
        return prefix + "v1-key"
    return prefix + (rest or "kind")


def problems(errors: Mapping[str, str], found: FormData) -> dict[str, str]:
    """Each problem of form the dunning services named (`parse_plan`), in the agent's language, under
    its form field."""
    said: dict[str, str] = dict(found.problems)
    for name, message in errors.items():
        _add(said, form_field(name, found), _words(name, message))
    return said


def _add(said: dict[str, str], field: str, text: str) -> None:
    said[field] = f"{said[field]} {text}" if field in said and text not in said[field] else text


def refusals(creditor: Creditor, found: FormData, today: date) -> dict[str, str]:
    """Why the plan in the form cannot be saved, by form field, in the agent's language: the dunning
    services' own checks, of form (`parse_plan`) and then of the law (`check_plan`); {} when it can."""
    if found.problems:
        return dict(found.problems)
    try:
        draft = parse_plan(found.data, languages_of(creditor))
    except InvalidData as exc:
        return problems(exc.errors, found)
    said: dict[str, str] = {}
    for violation in check_plan(draft, creditor, today):
        rule = jurisdictions.RULES[violation.rule]
        _add(said, form_field(violation.field, found),
             _("%(rule)s (%(section)s)", rule=rule_words(rule.id), section=rule.section))
    return said


def _words(name: str, message: str) -> str:
    last = name.rsplit(".", 1)[-1]
    if name == "name":
        return _("Please give the plan a name of 1 to 80 letters, digits, spaces, “.”, “_” or “-”.")
    if name == "jurisdiction":
        return _("Please choose the rules the plan follows.")
    if name in ("steps", "plan") or last.startswith("steps["):
        return _("A plan has 1 to %(most)s steps; please fill in each step's kind.", most=MAX_STEPS)
    if last == "kind":
        if message.startswith("steps go in order"):
            return _("Steps go in order: nudges before the due date, reminders, the final reminder, the collection "
                     "warning.")
        return _("Please choose the kind of step.")
    if last == "anchor":
        return _("Please choose what the days are counted from.")
    if last == "offset_days":
        if message.startswith("a pre-due nudge"):
            return _("A nudge goes before the due date: a negative number of days from the due date.")
        if "goes after the due date" in message:
            return _("This step goes after the due date: please give it more days.")
        if message.startswith("at least 1 day"):
            return _("Counted from the previous step, please give at least 1 day.")
        return _("Please enter a whole number of days from -60 to 365.")
    if last == "channels":
        return _("Please choose one or more channels, each once, in order of preference.")
    if last == "fee":
        return _("Please enter an amount of zero or more.")
    if last == "deadline_days":
        if message.startswith("a step that starts the hand-off"):
            return _("A step that starts the hand-off to debt collection gives a deadline of 1 day or more.")
        return _("Please enter a whole number of days from 0 to 90.")
    if last == "key":
        return _("Please give the variant a key of 1 to 40 small letters, digits, “_” or “-”, different from the "
                 "step's other variants.")
    if last == "weight":
        return _("Please enter a weight from 1 to 1000.")
    if last.endswith("variants") or re.search(r"variants\[\d+\]$", name):
        return _("A step has at most %(most)s variants, each with a key, a weight and its text.", most=MAX_VARIANTS)
    if message.startswith("missing: every step"):
        return _("Please write the text in each of the creditor's languages.")
    if message.startswith("missing"):
        return _("Please write this text: the step's channels need it.")
    if message.startswith("unknown variable"):
        return _("Only these variables may be used: %(names)s.",
                 names=", ".join(f"{{{variable}}}" for variable in templates.VARIABLES))
    if message.startswith("at most"):
        return _("This text is too long (%(most)s characters at most).", most=message.split()[2])
    return _("Something in the form was not right.")


def rule_words(rule_id: str) -> str:
    """What a rule of the law says, in the agent's language (`jurisdictions.RULES`; docs/dunning)."""
    return {
        "NO-currency": _("The inkassosats and the fees tied to it are in NOK: the creditor's currency must be NOK."),
        "NO-fee-cap": _("A reminder fee is at most 1/20 of the inkassosats."),
        "NO-fee-after-14-days": _("A reminder fee only for a reminder sent at least 14 days after the due date."),
        "NO-fee-count": _("At most two reminder fees per claim."),
        "NO-second-fee": _("A second reminder fee only after the first fee's reminder gave at least 14 days to pay."),
        "NO-warning-written": _("The collection warning is written: a letter must be among its channels."),
        "NO-warning-after-due": _("The collection warning goes at the earliest on the due date."),
        "NO-warning-deadline": _("The collection warning gives at least 14 days to pay from when it is sent."),
        "NO-warning-consequences": _("The collection warning names its deadline and what follows: its text must "
                                     "use {deadline} and {consequences}."),
        "NO-hand-off": _("Only the collection warning may start the hand-off to debt collection."),
        "DE-currency": _("The flat fee and the cost cap are in EUR: the creditor's currency must be EUR."),
        "DE-fee-actual-costs": _("A reminder fee is only the actual cost of the reminder (at most the configured "
                                 "cap)."),
        "DE-fee-in-default": _("Fees, interest and the flat fee only once the customer is in default."),
        "DE-flat-fee": _("The EUR 40 flat fee at most once per claim, from business customers only."),
        "DE-only": _("Default interest and the flat fee are German rules: only in a plan for Germany."),
    }.get(rule_id, rule_id)


@dataclass(frozen=True)
class RuleShown:
    id: str
    section: str
    says: str


def rules_of(jurisdiction: str) -> list[RuleShown]:
    """The rules a plan of this jurisdiction is checked against, with their sections."""
    prefix = {Jurisdiction.NO: "NO-", Jurisdiction.DE: "DE-"}.get(Jurisdiction(jurisdiction))
    if prefix is None:
        return []
    return [RuleShown(rule.id, rule.section, rule_words(rule.id)) for rule in jurisdictions.RULES.values()
            if rule.id.startswith(prefix)]


DOCS = {Jurisdiction.NO: "docs/dunning/norway.md", Jurisdiction.DE: "docs/dunning/germany.md",
        Jurisdiction.NONE: "docs/dunning/no-rules.md"}


def values_in_force(jurisdiction: str, day: date) -> list[tuple[str, int | Any, str]]:
    """The dated values of the law in force on `day`: (what, value, source); amounts in minor units."""
    if jurisdiction == Jurisdiction.NO:
        sats = jurisdictions.in_force(jurisdictions.INKASSOSATS, day)
        return [("inkassosats", sats.value, sats.source),
                ("fee_cap", jurisdictions.reminder_fee_cap(day), "inkassoforskriften § 1-2")]
    if jurisdiction == Jurisdiction.DE:
        cap = jurisdictions.in_force(jurisdictions.DE_REMINDER_COST_CAP, day)
        flat = jurisdictions.in_force(jurisdictions.DE_FLAT_FEE, day)
        rate = jurisdictions.in_force(jurisdictions.BASISZINSSATZ, day)
        return [("cost_cap", cap.value, cap.source), ("flat_fee", flat.value, flat.source),
                ("base_rate", rate.value, rate.source)]
    return []


def anchor_words() -> dict[str, str]:
    return {Anchor.DUE_DATE: _("days from the due date"), Anchor.PREVIOUS: _("days after the previous step")}


def start_from(creditor: Creditor, plan: Plan | None) -> dict[str, Any]:
    """What a new version's form starts from: the version given, else the shipped plan for the
    creditor's country (the plan without rules elsewhere)."""
    if plan is not None:
        return plan_as_data(plan)
    jurisdiction = creditor.country if creditor.country in ("NO", "DE") else Jurisdiction.NONE
    return shipped_plan(jurisdiction)


def interval_text(found: Interval, percent: bool = False) -> str:
    """An estimate with its 95 % interval, in the page's locale ("—" without data)."""
    if found.estimate is None:
        return "—"
    locale = current_format_locale()

    def number(value: float) -> str:
        return format_percent(value, format="0.0 %", locale=locale) if percent \
            else format_decimal(value, format="0.0", locale=locale)

    if found.low is None or found.high is None:
        return number(found.estimate)
    return _("%(estimate)s (95%% interval %(low)s to %(high)s)", estimate=number(found.estimate),
             low=number(found.low), high=number(found.high))


def language_names(languages: list[str]) -> dict[str, str]:
    """Each language's name in the page's language ("Norwegian Bokmål", "Norwegisch Bokmål")."""
    here = Locale.parse(current_format_locale())
    return {code: (Locale.parse(code).get_display_name(here) or code) for code in languages}


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        return {key: value for name, inner in data.items() for key, value in _flat(inner, f"{prefix}.{name}").items()}
    if isinstance(data, list) and prefix.endswith(("steps", "variants")):
        return {key: value for n, inner in enumerate(data, start=1)
                for key, value in _flat(inner, f"{prefix}[{n}]").items()}
    return {prefix.lstrip("."): data}


def version_changes(before: Plan | None, after: Plan) -> dict[str, list]:
    """What the new version changed against the latest version of its name before it, by field
    ('steps[2].fee': [3500, 3000]), for the audit log; every field of a new plan."""
    old = _flat({"jurisdiction": before.jurisdiction, "steps": plan_as_data(before)["steps"]}) if before else {}
    new = _flat({"jurisdiction": after.jurisdiction, "steps": plan_as_data(after)["steps"]})
    return {name: [old.get(name), new.get(name)] for name in sorted(set(old) | set(new))
            if old.get(name) != new.get(name)}
