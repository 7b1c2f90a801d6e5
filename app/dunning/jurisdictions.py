"""The law a dunning plan must keep, as data with its sources, and the checks run when a plan is saved.

Three profiles: Norway (inkassoloven §§ 9–10, inkassoforskriften ch. 1), Germany (BGB §§ 286, 288)
and "none" (no checks: other countries; named "No rules" wherever a plan is shown). Each rule is a
`Rule` (an id, the section it comes from, what it says); a plan that breaks one is refused with a
`Violation` per step and field, its message naming the rule and its section. The pages
docs/dunning/norway.md, germany.md and no-rules.md say the same in prose.

Amounts that the law ties to a date are **dated lists** (`Dated`): the value in force on a day is
the last one whose `since` is on or before it. An operator adds the next value (a new inkassosats,
the Bundesbank's next Basiszinssatz each 1 January and 1 July) by appending a line, with its source;
nothing else changes.

Pure: no database and no Flask, so the checks and the interest can be tested on their own. The
plan's steps are given as `StepRule`s (what `services.parse_plan` makes of the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

# --- dated values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dated:
    since: date
    value: int | Decimal
    source: str


def in_force(values: Sequence[Dated], day: date) -> Dated:
    """The value in force on `day`: the last one that started on or before it."""
    found = [value for value in values if value.since <= day]
    if not found:
        raise LookupError(f"no value in force on {day} (the first starts {values[0].since})")
    return max(found, key=lambda value: value.since)


#: The Norwegian inkassosats, in øre. Inkassoforskriften § 1-1.
INKASSOSATS: tuple[Dated, ...] = (
    Dated(date(2017, 1, 1), 70000, "inkassoforskriften § 1-1: NOK 700 from 1 January 2017"),
)

#: The German base rate (Basiszinssatz), in percent a year. § 247 BGB; published by the Deutsche
#: Bundesbank each 1 January and 1 July (it may be negative: it was from 2013 to 2022).
BASISZINSSATZ: tuple[Dated, ...] = (
    Dated(date(2023, 1, 1), Decimal("1.62"), "§ 247 BGB, Deutsche Bundesbank (1 January 2023)"),
    Dated(date(2023, 7, 1), Decimal("3.12"), "§ 247 BGB, Deutsche Bundesbank (1 July 2023)"),
    Dated(date(2024, 1, 1), Decimal("3.62"), "§ 247 BGB, Deutsche Bundesbank (1 January 2024)"),
    Dated(date(2024, 7, 1), Decimal("3.37"), "§ 247 BGB, Deutsche Bundesbank (1 July 2024)"),
    Dated(date(2025, 1, 1), Decimal("2.27"), "§ 247 BGB, Deutsche Bundesbank (1 January 2025)"),
    Dated(date(2025, 7, 1), Decimal("1.27"), "§ 247 BGB, Deutsche Bundesbank (1 July 2025)"),
    Dated(date(2026, 1, 1), Decimal("1.27"), "§ 247 BGB, Deutsche Bundesbank (1 January 2026, unchanged)"),
)

#: Germany: the most a reminder may cost the customer, in cent. Only the creditor's actual costs
#: (paper, printing, postage) may be charged as damages for delay (§§ 280(2), 286 BGB); the courts
#: allow about EUR 1–2.50. Configurable here: the operator decides what the creditors' costs are.
DE_REMINDER_COST_CAP: tuple[Dated, ...] = (
    Dated(date(2002, 1, 1), 250, "§§ 280(2), 286 BGB: only the actual costs of a reminder"),
)

#: Germany: the flat fee for a business debtor in default, in cent. § 288(5) BGB (since 29 July 2014).
DE_FLAT_FEE: tuple[Dated, ...] = (
    Dated(date(2014, 7, 29), 4000, "§ 288(5) BGB: EUR 40 from a business debtor in default"),
)

#: Germany: default interest over the base rate, in percentage points. § 288(1) and (2) BGB.
DE_INTEREST_POINTS = {"consumer": Decimal(5), "business": Decimal(9)}

#: Germany: days after the due date and receipt after which the debtor is in default without a reminder.
DE_DEFAULT_DAYS = 30  # § 286(3) BGB

#: Norway: days after the due date before a reminder fee may be charged, and the least deadline of an
#: inkassovarsel (and of the reminder before a second fee).
NO_FEE_AFTER_DAYS = 14  # inkassoforskriften § 1-2
NO_WARNING_DAYS = 14  # inkassoloven § 9
NO_MAX_FEES = 2  # inkassoforskriften § 1-2


def reminder_fee_cap(day: date) -> int:
    """Norway: the most a reminder fee may be on `day`, in øre: 1/20 of the inkassosats."""
    return int(in_force(INKASSOSATS, day).value) // 20


# --- the rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    section: str
    says: str


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("NO-currency", "inkassoforskriften § 1-1",
         "the inkassosats, and the fees tied to it, are in NOK: the creditor's currency must be NOK"),
    Rule("NO-fee-cap", "inkassoforskriften § 1-2",
         "a reminder fee (purregebyr) is at most 1/20 of the inkassosats"),
    Rule("NO-fee-after-14-days", "inkassoforskriften § 1-2",
         "a reminder fee may be charged only for a reminder sent at least 14 days after the due date"),
    Rule("NO-fee-count", "inkassoforskriften § 1-2",
         "at most two reminder fees per claim (two reminders, or a reminder and the inkassovarsel)"),
    Rule("NO-second-fee", "inkassoforskriften § 1-2",
         "a second reminder fee only after the first fee's reminder gave at least 14 days to pay"),
    Rule("NO-warning-written", "inkassoloven § 9",
         "the inkassovarsel is written: a letter, or electronically only where the customer agreed to it; "
         "a letter must be among its channels"),
    Rule("NO-warning-after-due", "inkassoloven § 9",
         "the inkassovarsel is sent at the earliest on the due date"),
    Rule("NO-warning-deadline", "inkassoloven § 9",
         "the inkassovarsel gives at least 14 days to pay from when it is sent"),
    Rule("NO-warning-consequences", "inkassoloven § 9",
         "the inkassovarsel names its deadline and what follows if it passes: its text must use "
         "{deadline} and {consequences}"),
    Rule("NO-hand-off", "inkassoloven § 9",
         "collection starts only after the inkassovarsel's deadline: only the inkassovarsel starts the hand-off"),
    Rule("DE-currency", "BGB § 288(5)",
         "the flat fee and the cost cap are in EUR: the creditor's currency must be EUR"),
    Rule("DE-fee-actual-costs", "BGB §§ 280(2), 286",
         "a reminder fee is only the actual cost of the reminder"),
    Rule("DE-fee-in-default", "BGB § 286(1) and (3)",
         "fees, interest and the flat fee only once the customer is in default: after an earlier reminder "
         "sent after the due date, or 30 days after the due date where the creditor's invoices tell "
         "consumers so"),
    Rule("DE-flat-fee", "BGB § 288(5)",
         "the EUR 40 flat fee is owed once per claim, by business customers only (the run charges it to them "
         "alone)"),
    Rule("DE-only", "BGB §§ 288(1), 288(5)",
         "default interest and the EUR 40 flat fee are German rules: only in a plan for Germany"),
)}


@dataclass(frozen=True)
class Violation:
    """A rule a step (or the plan) breaks: `field` names it as the input does ('steps[2].fee')."""

    rule: str
    field: str
    detail: str = ""

    @property
    def message(self) -> str:
        rule = RULES[self.rule]
        text = f"{rule.section}: {rule.says}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class StepRule:
    """What the checks need of a step. `earliest`: the fewest days after the due date it can go
    (negative: before), as `earliest_days` computes it for the run's schedule."""

    kind: str
    anchor: str
    offset_days: int
    channels: tuple[str, ...]
    fee: int
    deadline_days: int
    starts_hand_off: bool
    adds_interest: bool
    flat_fee: bool
    texts: dict
    earliest: int = 0


AFTER_DUE = ("reminder", "final_reminder", "collection_warning")


def gap_after(deadline_days: int) -> int:
    """Days from one step to the next at the least: the day after the deadline it gave, else the next day."""
    return deadline_days + 1 if deadline_days > 0 else 1


def earliest_days(steps: Sequence[tuple[str, int, int]]) -> list[int]:
    """For (anchor, offset_days, deadline_days) of each step in order: the fewest days after the due date
    on which each can go, as the run schedules them (`schedule.next_date`): a step anchored to the due
    date goes on its day, one anchored to the previous step that many days after it, and never before
    the previous step's deadline has passed."""
    found: list[int] = []
    for anchor, offset, _deadline in steps:
        if not found:
            found.append(offset)
            continue
        previous_day, previous_deadline = found[-1], steps[len(found) - 1][2]
        planned = offset if anchor == "due_date" else previous_day + offset
        found.append(max(planned, previous_day + gap_after(previous_deadline)))
    return found


def _fee_fields(step: StepRule) -> list[str]:
    return [name for name, on in (("fee", step.fee > 0), ("adds_interest", step.adds_interest),
                                  ("flat_fee", step.flat_fee)) if on]


def check_norway(steps: Sequence[StepRule], *, currency: str, day: date) -> list[Violation]:
    found: list[Violation] = []
    if currency != "NOK":
        found.append(Violation("NO-currency", "jurisdiction", f"the creditor's currency is {currency}"))
    cap = reminder_fee_cap(day)
    fee_steps = [i for i, step in enumerate(steps) if step.fee > 0]
    for i, step in enumerate(steps):
        where = f"steps[{i + 1}]"
        if step.fee > cap:
            found.append(Violation("NO-fee-cap", f"{where}.fee",
                                   f"at most {cap} øre on {day.isoformat()}, from an inkassosats of "
                                   f"{in_force(INKASSOSATS, day).value} øre; this step charges {step.fee}"))
        if step.fee > 0 and step.earliest < NO_FEE_AFTER_DAYS:
            found.append(Violation("NO-fee-after-14-days", f"{where}.fee",
                                   f"this step can go {step.earliest} days after the due date"))
        if step.kind == "collection_warning":
            if "letter" not in step.channels:
                found.append(Violation("NO-warning-written", f"{where}.channels"))
            if step.earliest < 0:
                found.append(Violation("NO-warning-after-due", f"{where}.offset_days",
                                       f"this step can go {-step.earliest} days before the due date"))
            if step.deadline_days < NO_WARNING_DAYS:
                found.append(Violation("NO-warning-deadline", f"{where}.deadline_days",
                                       f"this step gives {step.deadline_days} days"))
            for locale, text in sorted(step.texts.items()):
                for part in ("body", "sms"):
                    body = (text or {}).get(part)
                    if body and not ("{deadline}" in body and "{consequences}" in body):
                        found.append(Violation("NO-warning-consequences", f"{where}.texts.{locale}.{part}"))
        if step.starts_hand_off and step.kind != "collection_warning":
            found.append(Violation("NO-hand-off", f"{where}.starts_hand_off"))
    for n, i in enumerate(fee_steps):
        if n >= NO_MAX_FEES:
            found.append(Violation("NO-fee-count", f"steps[{i + 1}].fee", f"this is fee number {n + 1}"))
        elif n == 1:
            first = steps[fee_steps[0]]
            if first.deadline_days < NO_FEE_AFTER_DAYS:
                found.append(Violation("NO-second-fee", f"steps[{i + 1}].fee",
                                       f"step {fee_steps[0] + 1} gives {first.deadline_days} days"))
    return found


def check_germany(steps: Sequence[StepRule], *, currency: str, day: date,
                  consumer_default_notice: bool) -> list[Violation]:
    found: list[Violation] = []
    if currency != "EUR":
        found.append(Violation("DE-currency", "jurisdiction", f"the creditor's currency is {currency}"))
    cap = int(in_force(DE_REMINDER_COST_CAP, day).value)
    flat = [i for i, step in enumerate(steps) if step.flat_fee]
    for i in flat[1:]:
        found.append(Violation("DE-flat-fee", f"steps[{i + 1}].flat_fee", f"step {flat[0] + 1} charges it already"))
    for i, step in enumerate(steps):
        where = f"steps[{i + 1}]"
        if step.fee > cap:
            found.append(Violation("DE-fee-actual-costs", f"{where}.fee",
                                   f"at most {cap} cent as configured; this step charges {step.fee}"))
        charges = _fee_fields(step)
        if charges:
            reminded_before = any(earlier.kind in AFTER_DUE and earlier.earliest >= 1 for earlier in steps[:i])
            by_notice = consumer_default_notice and step.earliest >= DE_DEFAULT_DAYS
            if not (reminded_before or by_notice):
                found.append(Violation("DE-fee-in-default", f"{where}.{charges[0]}",
                                       "no reminder before it, and it is not 30 days after the due date with "
                                       "the consumer notice on the invoices" if not consumer_default_notice else
                                       f"no reminder before it, and it can go {step.earliest} days after the due "
                                       "date"))
    return found


def check_plan(jurisdiction: str, steps: Sequence[StepRule], *, currency: str, day: date,
               consumer_default_notice: bool = False) -> list[Violation]:
    """Every rule of `jurisdiction` the plan breaks, on `day` (the dated values in force then)."""
    found: list[Violation] = []
    if jurisdiction != "DE":
        for i, step in enumerate(steps):
            for name in ("adds_interest", "flat_fee"):
                if getattr(step, name):
                    found.append(Violation("DE-only", f"steps[{i + 1}].{name}"))
    if jurisdiction == "NO":
        found += check_norway(steps, currency=currency, day=day)
    elif jurisdiction == "DE":
        found += check_germany(steps, currency=currency, day=day, consumer_default_notice=consumer_default_notice)
    return found


# --- German default interest -------------------------------------------------------------------------


@dataclass(frozen=True)
class Interest:
    """Default interest owed on `principal` from `since` to `until` (both included), in minor units,
    and the yearly rates (percent) that applied, each with the day it started to apply."""

    amount: int
    principal: int
    since: date | None
    until: date
    rates: tuple[tuple[date, Decimal], ...] = ()


def default_interest_amount(principal: int, since: date, until: date, *, business: bool) -> Interest:
    """§ 288(1)/(2) BGB: base rate (§ 247, as it changes each half year) + 5 points for consumers, + 9 for
    businesses, on the days from `since` to `until` both included, actual/365, rounded half up at the
    end. A rate below zero counts as zero (interest is never paid to the debtor)."""
    if principal <= 0 or until < since:
        return Interest(0, max(principal, 0), since, until)
    points = DE_INTEREST_POINTS["business" if business else "consumer"]
    total = Decimal(0)
    rates: list[tuple[date, Decimal]] = []
    day = since
    while day <= until:
        base = in_force(BASISZINSSATZ, day)
        later = [value.since for value in BASISZINSSATZ if value.since > day]
        end = min(until, (min(later) - timedelta(days=1)) if later else until)
        rate = max(Decimal(base.value) + points, Decimal(0))
        if not rates or rates[-1][1] != rate:
            rates.append((day, rate))
        days = (end - day).days + 1
        total += Decimal(principal) * rate / Decimal(100) * Decimal(days) / Decimal(365)
        day = end + timedelta(days=1)
    return Interest(int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP)), principal, since, until, tuple(rates))
