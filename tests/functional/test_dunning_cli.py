"""`flask dunning`: plans from JSON and YAML files (a refused plan names its fields and saves nothing),
list, show, default, assign, preview a step's text; exclusions and settings; the run and its preview
walking a bill through time with --date."""

from __future__ import annotations

import json
from datetime import timedelta

import yaml
from sqlalchemy import func, select

from app.dunning import services
from app.dunning.models import Notice, Plan
from app.extensions import db
from tests.factories import make_creditor, make_invoice
from tests.unit.dunning.conftest import TODAY


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def plan_file(tmp_path, name="plan.yaml", **changes):
    data = services.shipped_plan("NO")
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True) if name.endswith(".yaml") else json.dumps(data))
    return path, data


def test_plans_are_created_listed_shown_and_versioned_from_files(app, session, tmp_path):
    creditor = make_creditor("NO")
    db.session.commit()
    assert run(app, "dunning", "settings", creditor.slug, "--languages", "nb,en,de", "--interval-days", "2",
               "--quiet", "20-8").exit_code == 0
    path, _data = plan_file(tmp_path)
    created = run(app, "dunning", "plans", "create", creditor.slug, str(path))
    assert created.exit_code == 0, created.output
    assert "Saved standard version 1 (the default)." in created.output
    json_path, _data = plan_file(tmp_path, "plan.json")
    assert "version 2 (the default)" in run(app, "dunning", "plans", "create", creditor.slug, str(json_path)).output
    listed = run(app, "dunning", "plans", "list", creditor.slug).output
    assert "standard v1: Norway" in listed and "standard v2 (default): Norway" in listed
    assert "3. Debt collection warning, 15 days after step 2, by email > letter, fee NOK\u00a035.00, 14 days to pay, " \
           "starts the hand-off" in listed
    shown = json.loads(run(app, "dunning", "plans", "show", creditor.slug, "standard", "--version", "1").output)
    assert shown["version"] == 1 and shown["steps"][1]["fee"] == 3500 and "nb" in shown["steps"][0]["texts"]
    assert run(app, "dunning", "plans", "default", creditor.slug, "standard", "--version", "1").exit_code == 0
    assert services.default_plan(creditor.id).version == 1
    settings = run(app, "dunning", "settings", creditor.slug).output
    assert "languages nb, en, de; at most one message in 2 days; quiet 20:00–08:00" in settings


def test_a_refused_plan_names_each_field_and_saves_nothing(app, session, tmp_path):
    creditor = make_creditor("NO")
    db.session.commit()
    data = services.shipped_plan("NO")
    data["steps"][1]["fee"] = 9900
    data["steps"][0]["texts"]["nb"]["sms"] = "Betal {belop}"
    data["steps"][0]["texts"].pop("en")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = run(app, "dunning", "plans", "create", creditor.slug, str(path))
    assert result.exit_code == 1
    assert "Plan not saved:" in result.output
    assert "steps[1].texts.nb.sms: unknown variable {belop}" in result.output
    assert "steps[1].texts.en: missing" in result.output
    data["steps"][0]["texts"]["nb"]["sms"] = "Betal {amount}: {link}"
    data["steps"][0]["texts"]["en"] = {"sms": "Pay {amount}: {link}", "subject": "Due", "body": "Pay {amount}."}
    path.write_text(json.dumps(data))
    result = run(app, "dunning", "plans", "create", creditor.slug, str(path))
    assert result.exit_code == 1 and "steps[2].fee: inkassoforskriften § 1-2" in result.output
    assert db.session.scalar(select(func.count()).select_from(Plan).where(Plan.creditor_id == creditor.id)) == 0
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    assert "is not valid YAML" in run(app, "dunning", "plans", "create", creditor.slug,
                                      str(tmp_path / "broken.yaml")).output


def test_a_step_is_previewed_for_a_sample_and_a_real_bill(app, session, tmp_path):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    db.session.commit()
    path, _data = plan_file(tmp_path)
    sample = run(app, "dunning", "plans", "preview", creditor.slug, str(path), "--step", "3", "--locale", "nb")
    assert sample.exit_code == 0, sample.output
    assert "--- Subject (nb) ---\nInkassovarsel: faktura 10001234" in sample.output
    assert "blir kravet sendt til inkasso" in sample.output
    real = run(app, "dunning", "plans", "preview", creditor.slug, str(path), "--step", "2", "--invoice", invoice.number)
    assert f"Faktura {invoice.number} er ikke betalt" in real.output
    assert db.session.scalar(select(func.count()).select_from(Plan).where(Plan.creditor_id == creditor.id)) == 0


def test_the_run_and_the_preview_walk_a_bill_through_time(app, session, tmp_path):
    creditor = make_creditor("NO")
    db.session.commit()
    path, _data = plan_file(tmp_path)
    run(app, "dunning", "settings", creditor.slug, "--languages", "nb,en,de")
    run(app, "dunning", "plans", "create", creditor.slug, str(path))
    due = TODAY + timedelta(days=3)
    paid = make_invoice(creditor, issue_date=(due - timedelta(days=20)).isoformat(), due_date=due.isoformat())
    kept = make_invoice(creditor, issue_date=(due - timedelta(days=20)).isoformat(), due_date=due.isoformat(),
                        customer={"external_ref": "C-9", "name": "Ola", "phone": "+4799887766"})
    db.session.commit()
    preview = run(app, "dunning", "preview", "--creditor", creditor.slug, "--date", TODAY.isoformat())
    assert preview.exit_code == 0, preview.output
    assert f"send  {paid.number}" in preview.output and "step 1 pre_due by sms" in preview.output
    assert "2 messages would go carrying 2 steps; 0 bills wait, 0 stop." in preview.output
    assert db.session.scalar(select(func.count()).select_from(Notice)) == 0  # the preview changed nothing
    assert paid.dunning_plan_id is None

    first = run(app, "dunning", "run", "--date", TODAY.isoformat(), "--creditor", creditor.slug)
    assert first.exit_code == 0, first.output
    assert "2 messages (2 by sms) carrying 2 steps, 0 fee lines" in first.output
    from app.billing.services import record_payment

    record_payment(paid, paid.balance, actor="test", paid_on=due, method="test")
    db.session.commit()
    later = (due + timedelta(days=17)).isoformat()  # the reminder's day is Christmas Day: the Monday after
    waits = run(app, "dunning", "preview", "--creditor", creditor.slug, "--date", later)
    assert f"stops {paid.number}" in waits.output and "the bill is paid" in waits.output
    second = run(app, "dunning", "run", "--date", later, "--creditor", creditor.slug)
    assert "1 messages (1 by sms) carrying 1 steps, 1 fee lines; 0 bills wait, 1 stopped" in second.output
    db.session.expire_all()
    assert [n.kind for n in db.session.scalars(select(Notice).where(Notice.invoice_id == paid.id))] == ["pre_due"]
    assert paid.dunning_next_on is None and kept.dunning_next_position == 3
    again = run(app, "dunning", "run", "--date", later, "--creditor", creditor.slug)
    assert "0 messages (none) carrying 0 steps" in again.output


def test_exclusions_and_assignment_from_the_command_line(app, session, tmp_path):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    db.session.commit()
    path, _data = plan_file(tmp_path)
    run(app, "dunning", "settings", creditor.slug, "--languages", "nb,en,de")
    run(app, "dunning", "plans", "create", creditor.slug, str(path), "--not-default")
    assigned = run(app, "dunning", "plans", "assign", creditor.slug, invoice.number, "standard")
    assert assigned.exit_code == 0, assigned.output
    assert f"Invoice {invoice.number} follows standard v1; its next step is due" in assigned.output
    out = run(app, "dunning", "exclude", creditor.slug, "--invoice", invoice.number)
    assert out.exit_code == 0 and invoice.dunning_next_on is None
    back = run(app, "dunning", "exclude", creditor.slug, "--customer", "C-1", "--include")
    assert "Customer C-1 (1 bills) back in the run." in back.output
    assert run(app, "dunning", "exclude", creditor.slug).exit_code == 2
    assert run(app, "dunning", "exclude", creditor.slug, "--invoice", "nope").exit_code == 1
    assert run(app, "dunning", "run", "--creditor", "nobody").exit_code == 1
    assert run(app, "dunning", "run", "--date", "31.02.2026").exit_code == 2


def test_a_plan_file_with_text_variants_is_saved_and_shown_by_the_command_line(app, session, tmp_path):
    creditor = make_creditor("NO")
    db.session.commit()
    data = services.shipped_plan("NO")
    reminder = data["steps"][1]
    reminder["variants"] = [{"key": "short", "weight": 2, "texts": reminder["texts"]}]
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    created = run(app, "dunning", "plans", "create", creditor.slug, str(path))
    assert created.exit_code == 0, created.output
    shown = json.loads(run(app, "dunning", "plans", "show", creditor.slug, "standard").output)
    assert shown["steps"][1]["variants"] == [{"key": "short", "weight": 2, "texts": reminder["texts"]}]
    reminder["variants"][0]["key"] = "Not a key"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    refused = run(app, "dunning", "plans", "create", creditor.slug, str(path))
    assert refused.exit_code == 1 and "steps[2].variants[1].key" in refused.output
