"""Plans: parsed (every problem at once, by field), checked against the law, saved as versions that
never change; texts in every language of the creditor, only known variables, filled safely; a step
previewed before saving; the shipped plans are lawful."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from app.dunning import services
from app.dunning.models import Plan, Step
from app.dunning.settings import save_settings
from app.errors import Conflict, InvalidData
from app.extensions import db
from tests.factories import make_creditor
from tests.unit.dunning.conftest import TODAY, bill, creditor_with_plan


def plans_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Plan))


@pytest.mark.parametrize(("kind", "jurisdiction"), [("NO", "NO"), ("DE", "DE"), ("IE", "none")])
def test_the_shipped_plans_are_lawful_and_become_the_default(ctx, kind, jurisdiction):
    creditor, plan = creditor_with_plan(kind, jurisdiction)
    assert plan.version == 1 and plan.is_default and plan.jurisdiction == jurisdiction
    assert services.default_plan(creditor.id) == plan and len(plan.steps) == 3


def refused(creditor, data) -> dict[str, str]:
    before = plans_count()
    with pytest.raises(InvalidData) as caught:
        services.save_plan(creditor, data, actor="test", today=TODAY)
    assert plans_count() == before  # nothing saved
    return caught.value.errors


def test_a_plan_breaking_a_rule_is_refused_naming_the_rule_and_its_section(norway):
    creditor, _plan = norway
    data = services.shipped_plan("NO")
    data["steps"][1]["fee"] = 5000
    data["steps"][2]["deadline_days"] = 10
    errors = refused(creditor, data)
    assert errors["steps[2].fee"].startswith("inkassoforskriften § 1-2: a reminder fee (purregebyr) is at most 1/20")
    assert errors["steps[3].deadline_days"].startswith("inkassoloven § 9: the inkassovarsel gives at least 14 days")


def test_a_step_without_text_in_one_of_the_creditors_languages_is_refused(norway):
    creditor, _plan = norway
    data = services.shipped_plan("NO")
    del data["steps"][0]["texts"]["de"]
    del data["steps"][1]["texts"]["en"]["sms"]
    errors = refused(creditor, data)
    assert errors["steps[1].texts.de"].startswith("missing: every step needs its text in each of the creditor's "
                                                  "languages (en, nb, de)")
    assert errors["steps[2].texts.en.sms"] == "missing: the step's channels need it"


def test_the_creditors_languages_decide_which_texts_are_needed(ctx):
    creditor = make_creditor("IE")  # no languages declared: its own (English) only
    data = services.shipped_plan("none")
    for step in data["steps"]:
        step["texts"] = {"en": step["texts"]["en"]}
    assert services.save_plan(creditor, data, actor="test", today=TODAY).version == 1
    save_settings(creditor, languages=["en", "de"])
    assert "steps[1].texts.de" in refused(creditor, data)


@pytest.mark.parametrize("text", ["Pay {amout} now", "Pay {0}", "Hi {customer.__class__}", "Hi { customer }",
                                  "{customer!r}"])
def test_a_template_naming_an_unknown_variable_is_refused(norway, text):
    creditor, _plan = norway
    data = services.shipped_plan("NO")
    data["steps"][0]["texts"]["nb"]["sms"] = text
    errors = refused(creditor, data)
    assert errors["steps[1].texts.nb.sms"].startswith("unknown variable {")
    assert "{customer}, {invoice}, {amount}" in errors["steps[1].texts.nb.sms"]


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["steps"][0].update(channels=["pigeon"]), "steps[1].channels"),
    (lambda d: d["steps"][0].update(channels=[]), "steps[1].channels"),
    (lambda d: d["steps"][0].update(kind="threat"), "steps[1].kind"),
    (lambda d: d["steps"][0].update(offset_days=2), "steps[1].offset_days"),  # a nudge after the due date
    (lambda d: d["steps"][1].update(offset_days=-1), "steps[2].offset_days"),  # a reminder before it
    (lambda d: d["steps"][1].update(fee="35"), "steps[2].fee"),
    (lambda d: d["steps"][1].update(fee=-1), "steps[2].fee"),
    (lambda d: d["steps"][2].update(offset_days=0), "steps[3].offset_days"),  # previous + 0
    (lambda d: d["steps"][2].update(starts_hand_off="yes"), "steps[3].starts_hand_off"),
    (lambda d: d["steps"].reverse(), "steps[3].kind"),
    (lambda d: d.update(jurisdiction="SE"), "jurisdiction"),
    (lambda d: d.update(name=""), "name"),
    (lambda d: d.update(steps=[]), "steps"),
    (lambda d: d["steps"][0].update(colour="red"), "steps[1]"),
    (lambda d: d["steps"][0]["texts"].update(fr={"sms": "Bonjour"}), "steps[1].texts.fr"),
])
def test_bad_input_is_refused_with_the_field(norway, change, field):
    creditor, _plan = norway
    data = copy.deepcopy(services.shipped_plan("NO"))
    change(data)
    assert field in refused(creditor, data)


def test_an_edit_saves_a_new_version_the_default_moves_and_bills_keep_theirs(norway):
    creditor, first = norway
    invoice = bill(creditor, first, due=TODAY + __import__("datetime").timedelta(days=3))
    data = services.shipped_plan("NO")
    data["steps"][0]["offset_days"] = -5
    second = services.save_plan(creditor, data, actor="test", today=TODAY)
    assert (second.name, second.version, second.is_default) == ("standard", 2, True)
    db.session.refresh(first)
    assert not first.is_default and first.steps[0].offset_days == -3  # never changed
    assert invoice.dunning_plan_id == first.id
    other = services.save_plan(creditor, {**services.shipped_plan("NO"), "name": "gentle"}, actor="test", today=TODAY)
    assert not other.is_default and services.default_plan(creditor.id) == second  # a new name: not by itself
    assert services.find_plan(creditor.id, "standard").version == 2
    assert services.find_plan(creditor.id, "standard", 1) == first
    assert services.plan_as_data(second)["steps"][0]["offset_days"] == -5


def test_a_bill_keeps_the_plan_version_it_started_with(norway):
    from datetime import timedelta

    from app.dunning import worker

    creditor, first = norway
    invoice = bill(creditor, first, due=TODAY + timedelta(days=3))
    worker.run(on=TODAY, slug=creditor.slug)
    second = services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=TODAY)
    with pytest.raises(Conflict):
        services.assign_plan(invoice, second, actor="test", today=TODAY)
    services.assign_plan(invoice, first, actor="test", today=TODAY)  # the same version again: its next step
    assert invoice.dunning_next_position == 2


def test_preview_fills_a_step_for_a_sample_or_a_real_bill_without_saving(norway):
    creditor, plan = norway
    sample = services.preview_step(creditor, services.shipped_plan("NO"), 2, "nb", today=TODAY)
    assert sample.sms.replace("\xa0", " ").startswith(
        f"{creditor.name}: Faktura 10001234 er ikke betalt. Purregebyr 35,00 kr er lagt til.")
    assert "/l/EXAMPLE" in sample.sms and "22. desember 2026" in sample.sms  # the deadline: 14 days
    invoice = bill(creditor, due=TODAY)
    real = services.preview_step(creditor, plan, 3, "en", invoice=invoice, today=TODAY)
    assert real.subject == f"Debt collection warning: invoice {invoice.number}"
    assert "If the amount is not paid within the deadline, the claim will be handed to debt collection" in real.body
    with pytest.raises(InvalidData) as caught:
        services.preview_step(creditor, plan, 4, "en")
    assert caught.value.errors == {"step": "a step from 1 to 3"}


def test_a_filled_text_is_never_a_format_string(norway):
    from app.dunning import templates

    facts = templates.Facts("{invoice} %s {0}", "7", 100, "NOK", TODAY, None, 0, "L", "C", "R", "none")
    values = templates.values(facts, "en")
    assert templates.fill("{customer} owes {amount} %(x)s {{invoice}}", values) == \
        f"{{invoice}} %s {{0}} owes {values['amount']} %(x)s {{7}}"  # the customer's braces stay as they are


def test_steps_are_rows_of_the_plan(norway):
    _creditor, plan = norway
    steps = db.session.scalars(select(Step).where(Step.plan_id == plan.id).order_by(Step.position)).all()
    assert [(s.kind, s.fee, s.deadline_days, s.starts_hand_off) for s in steps] == [
        ("pre_due", 0, 0, False), ("reminder", 3500, 14, False), ("collection_warning", 3500, 14, True)]
