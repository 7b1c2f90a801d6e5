"""The law as data: each rule of Norway and Germany refuses what it must and nothing else, the dated
values are read on their day, and German default interest is computed across a change of base rate."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.dunning import jurisdictions as j
from app.dunning.jurisdictions import Dated, StepRule, check_plan, earliest_days, in_force

DAY = date(2026, 12, 8)
TEXT = {"nb": {"body": "Betal innen {deadline}. {consequences}"}, "en": {"body": "Pay by {deadline}. {consequences}"}}


def step(kind="reminder", *, earliest=14, fee=0, deadline=14, channels=("sms", "email", "letter"), hand_off=False,
         interest=False, flat=False, texts=None) -> StepRule:
    return StepRule(kind, "due_date", earliest, tuple(channels), fee, deadline, hand_off, interest, flat,
                    texts if texts is not None else dict(TEXT), earliest)


def rules(found) -> set[tuple[str, str]]:
    return {(v.rule, v.field) for v in found}


NORWAY = [step("pre_due", earliest=-3, deadline=0), step("reminder", earliest=14, fee=3500),
          step("collection_warning", earliest=29, fee=3500, channels=("email", "letter"), hand_off=True)]


def test_the_shipped_norwegian_shape_breaks_no_rule():
    assert check_plan("NO", NORWAY, currency="NOK", day=DAY) == []


@pytest.mark.parametrize(("steps", "broken"), [
    ([step(fee=3501)], {("NO-fee-cap", "steps[1].fee")}),
    ([step(earliest=13, fee=3500)], {("NO-fee-after-14-days", "steps[1].fee")}),
    ([step(fee=100), step(earliest=29, fee=100), step("final_reminder", earliest=44, fee=100)],
     {("NO-fee-count", "steps[3].fee")}),
    ([step(fee=100, deadline=10), step(earliest=29, fee=100)], {("NO-second-fee", "steps[2].fee")}),
    ([step("collection_warning", channels=("email", "sms"))], {("NO-warning-written", "steps[1].channels")}),
    ([step("collection_warning", deadline=13)], {("NO-warning-deadline", "steps[1].deadline_days")}),
    ([step("collection_warning", earliest=-1)], {("NO-warning-after-due", "steps[1].offset_days")}),
    ([step("collection_warning", texts={"nb": {"body": "Betal innen {deadline}."}})],
     {("NO-warning-consequences", "steps[1].texts.nb.body")}),
    ([step("final_reminder", hand_off=True)], {("NO-hand-off", "steps[1].starts_hand_off")}),
    ([step(interest=True)], {("DE-only", "steps[1].adds_interest")}),
    ([step(flat=True)], {("DE-only", "steps[1].flat_fee")}),
])
def test_each_norwegian_rule_refuses_its_case(steps, broken):
    assert rules(check_plan("NO", steps, currency="NOK", day=DAY)) == broken


def test_a_norwegian_plan_needs_nok_and_its_messages_name_the_section():
    found = check_plan("NO", [step(fee=5000)], currency="EUR", day=DAY)
    assert rules(found) == {("NO-currency", "jurisdiction"), ("NO-fee-cap", "steps[1].fee")}
    cap = next(v for v in found if v.rule == "NO-fee-cap")
    assert cap.message.startswith("inkassoforskriften § 1-2: a reminder fee (purregebyr) is at most 1/20")
    assert "at most 3500 øre on 2026-12-08, from an inkassosats of 70000 øre" in cap.message


def test_the_fee_cap_follows_the_inkassosats_in_force(monkeypatch):
    assert j.reminder_fee_cap(date(2017, 1, 1)) == 3500
    monkeypatch.setattr(j, "INKASSOSATS", (*j.INKASSOSATS, Dated(date(2027, 1, 1), 76000, "a new sats")))
    assert j.reminder_fee_cap(date(2026, 12, 31)) == 3500 and j.reminder_fee_cap(date(2027, 1, 1)) == 3800
    assert check_plan("NO", [step(fee=3800)], currency="NOK", day=date(2027, 1, 1)) == []
    with pytest.raises(LookupError):
        in_force(j.INKASSOSATS, date(2016, 12, 31))


GERMANY = [step("pre_due", earliest=-3, deadline=0), step("reminder", earliest=7),
           step("final_reminder", earliest=22, fee=250, interest=True, flat=True, hand_off=True)]


def test_the_shipped_german_shape_breaks_no_rule():
    assert check_plan("DE", GERMANY, currency="EUR", day=DAY) == []


@pytest.mark.parametrize(("steps", "notice", "broken"), [
    ([step(earliest=7), step(earliest=22, fee=251)], False, {("DE-fee-actual-costs", "steps[2].fee")}),
    ([step(earliest=7, fee=100)], False, {("DE-fee-in-default", "steps[1].fee")}),
    ([step(earliest=30, fee=100)], False, {("DE-fee-in-default", "steps[1].fee")}),
    ([step(earliest=30, fee=100)], True, set()),  # § 286(3): the invoices told consumers
    ([step(earliest=29, fee=100)], True, {("DE-fee-in-default", "steps[1].fee")}),
    ([step(earliest=7, interest=True)], False, {("DE-fee-in-default", "steps[1].adds_interest")}),
    ([step(earliest=7, flat=True)], False, {("DE-fee-in-default", "steps[1].flat_fee")}),
    ([step("pre_due", earliest=-3), step(earliest=7, fee=100)], False, {("DE-fee-in-default", "steps[2].fee")}),
    ([step(earliest=7), step(earliest=22, flat=True), step(earliest=37, flat=True)], False,
     {("DE-flat-fee", "steps[3].flat_fee")}),
])
def test_each_german_rule_refuses_its_case(steps, notice, broken):
    assert rules(check_plan("DE", steps, currency="EUR", day=DAY, consumer_default_notice=notice)) == broken


def test_a_german_plan_needs_eur():
    assert rules(check_plan("DE", [step(earliest=7)], currency="NOK", day=DAY)) == {("DE-currency", "jurisdiction")}


def test_no_rules_checks_nothing_but_german_only_features():
    wild = [step(earliest=1, fee=10_000_000, deadline=0, channels=("sms",), hand_off=True)]
    assert check_plan("none", wild, currency="USD", day=DAY) == []
    assert rules(check_plan("none", [step(interest=True)], currency="EUR", day=DAY)) == {
        ("DE-only", "steps[1].adds_interest")}


def test_earliest_days_keeps_each_step_after_the_deadline_before_it():
    # a reminder 14 days after the due date with 14 days to pay, then one anchored 20 days after the due
    # date (moved past the deadline: day 29), then one 5 days after that
    assert earliest_days([("due_date", -3, 0), ("due_date", 14, 14), ("due_date", 20, 0), ("previous", 5, 0)]) == \
        [-3, 14, 29, 34]


def test_the_base_rate_is_read_on_its_day():
    assert in_force(j.BASISZINSSATZ, date(2025, 6, 30)).value == Decimal("2.27")
    assert in_force(j.BASISZINSSATZ, date(2025, 7, 1)).value == Decimal("1.27")
    assert in_force(j.BASISZINSSATZ, date(2026, 1, 1)).value == Decimal("1.27")


def test_default_interest_runs_day_by_day_across_a_change_of_base_rate():
    # 1,000.00 EUR from 2025-06-01 to 2025-07-31: 30 days at 2.27 + 5 = 7.27 %, 31 days at 6.27 %
    found = j.default_interest_amount(100000, date(2025, 6, 1), date(2025, 7, 31), business=False)
    expected = Decimal(100000) * (Decimal("7.27") * 30 + Decimal("6.27") * 31) / 100 / 365
    assert found.amount == int(expected.quantize(Decimal(1), rounding="ROUND_HALF_UP")) == 1130
    assert found.rates == ((date(2025, 6, 1), Decimal("7.27")), (date(2025, 7, 1), Decimal("6.27")))
    business = j.default_interest_amount(100000, date(2026, 1, 1), date(2026, 12, 31), business=True)
    assert business.amount == 10270 and business.rates == ((date(2026, 1, 1), Decimal("10.27")),)
    assert j.default_interest_amount(0, date(2026, 1, 1), date(2026, 2, 1), business=True).amount == 0
