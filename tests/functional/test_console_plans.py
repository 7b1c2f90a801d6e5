"""The creditor console's reminder plans (issue 17) and the experiments on a step's text (issue 18, item 3):
the plans and versions with their open bills, a version with its rules, a new version from the form
(checked by the dunning services, refused by field and translated, nothing saved), the default, the
preview in each language, variants and their stop; every change audited; other roles 403, another
creditor's plans 404."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.dunning import services
from app.dunning.models import Plan, StepVariant
from app.dunning.settings import save_settings
from app.extensions import db
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import CSRF, EN
from tests.functional.test_console import entries, sign_in

DE_HEADERS = {"Accept-Language": "de"}
NB_HEADERS = {"Accept-Language": "nb"}


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    save_settings(creditor, languages=["nb", "en"])
    services.save_plan(creditor, services.shipped_plan("NO"), actor="test")
    db.session.commit()
    return creditor


def plan_urls(creditor_id: int, plan_id: int) -> list[tuple[str, str]]:
    base = f"/backoffice/console/{creditor_id}/plans"
    return [("GET", base), ("GET", f"{base}/new"), ("POST", f"{base}/new"), ("GET", f"{base}/{plan_id}"),
            ("POST", f"{base}/{plan_id}/default"), ("GET", f"{base}/{plan_id}/preview"),
            ("POST", f"{base}/{plan_id}/steps/2/variants/short/stop")]


def form_of(page: str) -> dict[str, str]:
    """The fields of the plan form as the browser would send them (text, selects, checked boxes)."""
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input type="(?:text|hidden)"[^>]*?name="([^"]+)" value="([^"]*)"', page):
        fields[name] = value
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields[name] = value
    for name, body in re.findall(r'<textarea [^>]*?name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        fields[name] = _unescape(body)
    for name, options in re.findall(r'<select [^>]*?name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        fields[name] = chosen.group(1) if chosen else ""
    for name in re.findall(r'<input type="checkbox" [^>]*?name="([^"]+)" checked', page):
        fields[name] = "on"
    return {name: _unescape(value) for name, value in fields.items()}


def _unescape(text: str) -> str:
    return (text.replace("&#34;", '"').replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
            .replace("&amp;", "&"))


def new_form(client, creditor, plan=None) -> dict[str, str]:
    query = f"?from={plan.id}" if plan else ""
    return form_of(client.get(f"/backoffice/console/{creditor.id}/plans/new{query}", headers=EN).text)


def versions(creditor) -> int:
    return db.session.scalar(select(func.count()).select_from(Plan).where(Plan.creditor_id == creditor.id))


# --- who may use it ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_other_roles_of_the_creditor_get_403_on_every_plan_route(app, client, creditor, role):
    sign_in(app, client, creditor, role)
    plan = services.default_plan(creditor.id)
    csrf = CSRF.search(client.get("/backoffice/", headers=EN).text).group(1)
    for method, url in plan_urls(creditor.id, plan.id):
        answer = client.open(url, method=method, data={"csrf_token": csrf}, headers=EN)
        assert answer.status_code == 403, f"{method} {url} answered {answer.status_code}"


def test_another_creditors_plans_are_404_and_never_shown(app, client, creditor):
    other = make_creditor("DE")
    services.save_plan(other, services.shipped_plan("DE"), actor="test")
    db.session.commit()
    theirs = services.default_plan(other.id)
    sign_in(app, client, creditor)
    csrf = CSRF.search(client.get(f"/backoffice/console/{creditor.id}", headers=EN).text).group(1)
    for method, url in plan_urls(other.id, theirs.id):
        answer = client.open(url, method=method, data={"csrf_token": csrf}, headers=EN)
        assert answer.status_code == 404, f"{method} {url} answered {answer.status_code}"
    # their version under our creditor's address: 404 too, and nothing changed
    for method, url in plan_urls(creditor.id, theirs.id)[3:]:
        answer = client.open(url, method=method, data={"csrf_token": csrf}, headers=EN)
        assert answer.status_code == 404, f"{method} {url} answered {answer.status_code}"
    assert client.get(f"/backoffice/console/{creditor.id}/plans/new?from={theirs.id}", headers=EN).status_code == 404
    listing = client.get(f"/backoffice/console/{creditor.id}/plans", headers=EN).text
    assert f"/plans/{theirs.id}\"" not in listing
    db.session.expire_all()
    assert services.default_plan(other.id).id == theirs.id


def test_posts_without_the_csrf_token_are_refused(app, client, creditor):
    sign_in(app, client, creditor)
    plan = services.default_plan(creditor.id)
    before = versions(creditor)
    base = f"/backoffice/console/{creditor.id}/plans"
    for url in (f"{base}/new", f"{base}/{plan.id}/default"):
        assert client.post(url, data={"name": "x"}, headers=EN).status_code == 400
    assert versions(creditor) == before


# --- the pages --------------------------------------------------------------------------------------------


def test_plans_list_versions_with_the_default_and_their_open_bills(app, client, creditor):
    agent = sign_in(app, client, creditor)
    plan = services.default_plan(creditor.id)
    for n in range(3):
        invoice = make_invoice(creditor, number=f"P-{n}")
        invoice.dunning_plan_id = plan.id
    test_bill = make_invoice(creditor, number="T-1", livemode=False)
    test_bill.dunning_plan_id = plan.id
    db.session.commit()
    page = client.get(f"/backoffice/console/{creditor.id}/plans", headers=EN)
    assert page.status_code == 200
    row = re.search(rf'plans/{plan.id}">standard · version 1</a></th>(.*?)</tr>', page.text, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[0] == "1" and cells[1] == "Norway" and cells[2] == "3" and cells[3] == "3"  # the test bill not counted
    assert "default" in cells[5]
    assert entries(agent, "console_viewed")[-1].detail["page"] == "plans"


def test_a_version_shows_its_steps_and_the_rules_with_their_sources(app, client, creditor):
    sign_in(app, client, creditor)
    plan = services.default_plan(creditor.id)
    page = client.get(f"/backoffice/console/{creditor.id}/plans/{plan.id}", headers=EN).text
    assert "Debt collection warning" in page and "14 days" in page
    assert "A reminder fee is at most 1/20 of the inkassosats." in page
    assert "inkassoforskriften § 1-2" in page and "inkassoloven § 9" in page
    assert "NOK" in page and "35.00" in page  # the fee cap in force (1/20 of NOK 700)
    assert "docs/dunning/norway.md" in page
    german = client.get(f"/backoffice/console/{creditor.id}/plans/{plan.id}", headers=DE_HEADERS).text
    assert "Ein Mahngebühr" in german or "Mahngebühr" in german


def test_a_changed_step_saves_the_next_version_and_the_old_one_stays(app, client, creditor):
    agent = sign_in(app, client, creditor)
    plan = services.default_plan(creditor.id)
    form = new_form(client, creditor, plan)
    assert form["name"] == "standard" and form["s2-fee"] == "35.00" and form["s2-kind"] == "reminder"
    old_sms = plan.steps[1].texts["nb"]["sms"]
    form["s2-offset_days"] = "16"
    form["s2-fee"] = "30"
    form["s2-nb-sms"] = "{creditor}: Faktura {invoice} er ubetalt. Betal {amount} innen {deadline}: {link}"
    answer = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=EN)
    assert answer.status_code == 303, answer.text
    db.session.expire_all()
    new = services.find_plan(creditor.id, "standard")
    assert new.version == 2 and new.id != plan.id and new.is_default  # the default moves to the plan's new version
    assert new.steps[1].offset_days == 16 and new.steps[1].fee == 3000
    assert new.steps[1].texts["nb"]["sms"].startswith("{creditor}: Faktura {invoice} er ubetalt")
    old = db.session.get(Plan, plan.id)
    assert old.steps[1].offset_days == 14 and old.steps[1].fee == 3500 and not old.is_default
    entry = entries(agent, "console_plan_saved")[-1]
    assert entry.detail["name"] == "standard" and entry.detail["version"] == 2 and entry.record_id == str(new.id)
    assert entry.detail["changes"] == {  # against version 1, field by field
        "steps[2].offset_days": [14, 16], "steps[2].fee": [3500, 3000],
        "steps[2].texts.nb.sms": [old_sms, form["s2-nb-sms"]]}
    assert services.plan_as_data(new)["steps"][0] == services.plan_as_data(old)["steps"][0]


def test_a_fee_over_the_norwegian_cap_is_refused_by_field_translated_and_nothing_saved(app, client, creditor):
    agent = sign_in(app, client, creditor)
    plan = services.default_plan(creditor.id)
    form = new_form(client, creditor, plan)
    form["s2-fee"] = "80"
    form["s3-channel1"], form["s3-channel2"] = "email", ""
    before = versions(creditor)
    answer = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=EN)
    assert answer.status_code == 422
    assert re.search(r'id="f-s2-fee-error">A reminder fee is at most 1/20 of the inkassosats\. '
                     r"\(inkassoforskriften § 1-2\)", answer.text)
    assert re.search(r'id="f-s3-channel1-error">The collection warning is written: a letter must be among its '
                     r"channels\.", answer.text)
    assert 'value="80"' in answer.text  # what was typed stays in the form
    german = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=DE_HEADERS)
    assert german.status_code == 422 and "höchstens 1/20 des Inkassosatzes" in german.text
    norwegian = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=NB_HEADERS)
    assert norwegian.status_code == 422 and "inkassosatsen" in norwegian.text
    assert versions(creditor) == before
    assert not entries(agent, "console_plan_saved")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("s1-offset_days", "abc", "Please enter a whole number of days from -60 to 365."),
    ("s1-offset_days", "3", "A nudge goes before the due date"),
    ("s2-fee", "3,5,5", "Please enter an amount, such as 35.00."),
    ("s2-nb-sms", "Betal {belop} nå", "Only these variables may be used"),
    ("s2-en-subject", "", "Please write this text: the step's channels need it."),
    ("name", "", "Please give the plan a name"),
    ("s2-v1-key", "Not A Key", "Please give the variant a key"),
])
def test_bad_fields_are_named_next_to_the_field_and_change_nothing(app, client, creditor, field, value, words):
    sign_in(app, client, creditor)
    form = new_form(client, creditor, services.default_plan(creditor.id))
    form[field] = value
    if field.startswith("s2-v1"):
        form["s2-v1-nb-sms"] = form["s2-nb-sms"]
        form["s2-v1-en-sms"] = form["s2-en-sms"]
    before = versions(creditor)
    answer = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=EN)
    assert answer.status_code == 422
    error = re.search(rf'id="f-{re.escape(field)}-error">([^<]*)<', answer.text)
    assert error is not None and words in error.group(1).replace("&#39;", "'"), answer.text[:200]
    assert versions(creditor) == before


def test_a_version_is_set_as_the_default_and_audited(app, client, creditor):
    agent = sign_in(app, client, creditor)
    first = services.default_plan(creditor.id)
    data = services.shipped_plan("NO") | {"name": "gentle"}
    second = services.save_plan(creditor, data, actor="test")
    db.session.commit()
    assert not second.is_default
    page = f"/backoffice/console/{creditor.id}/plans/{second.id}"
    csrf = CSRF.search(client.get(page, headers=EN).text).group(1)
    answer = client.post(f"{page}/default", data={"csrf_token": csrf}, headers=EN)
    assert answer.status_code == 303
    db.session.expire_all()
    assert services.default_plan(creditor.id).id == second.id
    entry = entries(agent, "console_plan_default_set")[-1]
    assert entry.detail["changes"] == {"default": [f"standard v{first.version}", "gentle v1"]}


def test_the_preview_shows_each_step_in_each_language_for_a_sample_or_a_chosen_bill(app, client, creditor):
    sign_in(app, client, creditor)
    plan = services.default_plan(creditor.id)
    invoice = make_invoice(creditor, number="PV-77")
    db.session.commit()
    base = f"/backoffice/console/{creditor.id}/plans/{plan.id}/preview"
    sample = client.get(base, headers=EN).text
    assert sample.count('<article lang="nb"') == 3 and sample.count('<article lang="en"') == 3
    assert "Kari Nordmann" in sample and "Purring: faktura 10001234" in sample
    assert "Inkassovarsel: faktura 10001234" in sample
    chosen = client.get(f"{base}?invoice=PV-77", headers=EN).text
    assert invoice.customer.name in chosen and "Purring: faktura PV-77" in chosen
    other = make_creditor("NO")
    make_invoice(other, number="THEIRS-1")
    db.session.commit()
    refused = client.get(f"{base}?invoice=THEIRS-1", headers=EN)
    assert refused.status_code == 422 and "No bill of" in refused.text
    assert "faktura THEIRS-1" not in refused.text and "Purring: faktura 10001234" in refused.text  # the sample


# --- variants ---------------------------------------------------------------------------------------------


def test_variants_are_saved_shown_with_results_and_stopped_with_an_audit_entry(app, client, creditor):
    agent = sign_in(app, client, creditor)
    plan = services.default_plan(creditor.id)
    form = new_form(client, creditor, plan)
    for key, weight in (("short", "3"), ):
        form["s2-v1-key"], form["s2-v1-weight"] = key, weight
        for locale in ("nb", "en"):
            form[f"s2-v1-{locale}-sms"] = "{creditor}: {invoice} ubetalt, {amount} innen {deadline}: {link}"
            form[f"s2-v1-{locale}-subject"] = "Purring {invoice}"
            form[f"s2-v1-{locale}-body"] = "Betal {amount} innen {deadline}: {link}"
    answer = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=EN)
    assert answer.status_code == 303, answer.text
    db.session.expire_all()
    new = services.find_plan(creditor.id, "standard")
    assert [(v.key, v.weight) for v in new.steps[1].variants] == [("short", 3)]
    page = client.get(f"/backoffice/console/{creditor.id}/plans/{new.id}", headers=EN).text
    assert "Experiment on step 2" in page and "Results per variant" in page
    preview = client.get(f"/backoffice/console/{creditor.id}/plans/{new.id}/preview", headers=EN).text
    assert "Purring 10001234" in preview
    # a second variant comes with the next version; stop one
    csrf = CSRF.search(page).group(1)
    stop = f"/backoffice/console/{creditor.id}/plans/{new.id}/steps/2/variants/short/stop"
    assert client.post(stop, data={"csrf_token": csrf}, headers=EN).status_code == 303
    variant = db.session.scalar(select(StepVariant).where(StepVariant.step_id == new.steps[1].id))
    db.session.refresh(variant)
    assert variant.stopped_at is not None and variant.stopped_by == f"agent:{agent.id}"
    entry = entries(agent, "console_variant_stopped")[-1]
    assert entry.detail["variant"] == "short" and entry.detail["step"] == 2
    assert client.post(stop, data={"csrf_token": csrf}, headers=EN).status_code == 303
    assert len(entries(agent, "console_variant_stopped")) == 1  # stopping again changes nothing
    assert client.post(f"/backoffice/console/{creditor.id}/plans/{new.id}/steps/2/variants/nope/stop",
                       data={"csrf_token": csrf}, headers=EN).status_code == 404
    # a stopped variant is not carried into the next version's form
    assert "s2-v1-key" not in new_form(client, creditor, new) or new_form(client, creditor, new)["s2-v1-key"] == ""


def test_a_removed_step_leaves_the_problems_under_the_right_rows(app, client, creditor):
    sign_in(app, client, creditor)
    form = new_form(client, creditor, services.default_plan(creditor.id))
    form["s1-remove"] = "on"  # the nudge goes: the service's steps[2] is the form's third row
    form["s3-deadline_days"] = "5"
    before = versions(creditor)
    answer = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=EN)
    assert answer.status_code == 422
    assert re.search(r'id="f-s3-deadline_days-error">The collection warning gives at least 14 days', answer.text)
    assert 'id="f-s2-deadline_days-error"' not in answer.text
    assert re.search(r'name="s1-remove" checked', answer.text)  # what was ticked stays ticked
    assert versions(creditor) == before
    del form["s3-deadline_days"], form["s1-remove"]
    form["s1-remove"], form["s3-deadline_days"] = "on", "14"
    assert client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=EN).status_code == 303
    db.session.expire_all()
    assert [s.kind for s in services.find_plan(creditor.id, "standard").steps] == ["reminder", "collection_warning"]


def test_a_creditor_without_plans_starts_from_the_shipped_plan_of_its_country(app, client):
    german = make_creditor("DE")
    db.session.commit()
    sign_in(app, client, german)
    assert "None yet." in client.get(f"/backoffice/console/{german.id}/plans", headers=EN).text
    form = new_form(client, german)
    assert form["jurisdiction"] == "DE" and form["s1-kind"] == "pre_due"
    assert client.post(f"/backoffice/console/{german.id}/plans/new", data=form, headers=EN).status_code == 303
    db.session.expire_all()
    plan = services.default_plan(german.id)
    assert (plan.jurisdiction, plan.version, plan.name) == ("DE", 1, services.shipped_plan("DE")["name"])


@pytest.mark.parametrize("changes", [
    {"steps": "x"}, {"steps": "²"},
    {"s1-offset_days": "٣"}, {"s1-kind": "bogus"}, {"s1-channel1": "fax"}, {"jurisdiction": "XX"},
    {"s1-anchor": "moon"}, {"s2-fee": "-5"}, {"s2-offset_days": "99999999999"},
    {"s2-v1-key": "a", "s2-v1-weight": "5000"}, {"name": "x" * 300},
    {"s2-deadline_days": "-1"}, {"s1-kind": "", "s2-kind": "", "s3-kind": ""},
    {"s3-kind": "pre_due"}, {"s2-en-sms": "{0} {amount}"}, {"s2-nb-body": "x" * 6000},
])
def test_any_bad_input_is_a_translated_422_never_a_500(app, client, creditor, changes):
    sign_in(app, client, creditor)
    form = new_form(client, creditor, services.default_plan(creditor.id)) | changes
    before = versions(creditor)
    answer = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=DE_HEADERS)
    assert answer.status_code == 422, changes
    assert "Nichts wurde gespeichert" in answer.text
    assert versions(creditor) == before


@pytest.mark.parametrize("changes", [
    {"steps": "999999"},  # at most the 20 steps a plan may have are read
    {"languages": "xx,../,nb"},  # only languages the portal serves are read
    {"s2-variants": "abc", "s2-v1-key": "a"},  # no variant rows are read
])
def test_odd_counts_and_languages_are_read_within_their_bounds(app, client, creditor, changes):
    sign_in(app, client, creditor)
    form = new_form(client, creditor, services.default_plan(creditor.id)) | changes
    answer = client.post(f"/backoffice/console/{creditor.id}/plans/new", data=form, headers=EN)
    assert answer.status_code == 303
    db.session.expire_all()
    plan = services.find_plan(creditor.id, "standard")
    assert plan.version == 2 and len(plan.steps) == 3 and not plan.steps[1].variants
    assert set(plan.steps[1].texts) >= {"nb", "en"}  # the creditor's languages, whatever the form says
