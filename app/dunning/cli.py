"""`flask dunning`: the run and its preview, plans (create from a JSON or YAML file, show, list, set
the default, assign to an invoice, preview a step's text), exclusions and a creditor's settings.
The logic is in `services` and `worker`, for the creditor API and the back office to call too."""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from typing import Any

import click
import yaml
from flask.cli import AppGroup
from sqlalchemy import select

from app.billing.models import Customer
from app.billing.services import find_invoice
from app.commands import cli_transaction
from app.core.dates import local_today, parse_date
from app.core.jobs import record_success
from app.creditors.commands import creditor_or_fail
from app.dunning import services, worker
from app.dunning.engine import reason_words
from app.dunning.models import Jurisdiction, Plan, StepKind
from app.dunning.settings import languages_of, save_settings, settings_of
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.money import format_money

ACTOR = "cli"


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    parsed = parse_date(value)
    if parsed is None:
        raise click.BadParameter(f"{value!r} is not a date (2026-12-31)")
    return parsed


def _time(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time of day (10:00)") from None


DATE_HELP = "The creditor's local date to run as (tests, the demo); default: today."
AT_HELP = "With --date: the local time quiet hours are read at (default 10:00)."


@click.group(cls=AppGroup, help="Reminders the portal sends: plans, the run, its preview.")
def dunning():
    pass


@dunning.command("run", help="Send every reminder step due (cron, every few minutes; safe in parallel).")
@click.option("--date", "on", help=DATE_HELP)
@click.option("--at", "at", default="10:00", show_default=True, help=AT_HELP)
@click.option("--creditor", "slug", help="Only this creditor.")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=worker.BATCH_SIZE, show_default=True,
              help="Customers per transaction.")
def run_command(on: str | None, at: str, slug: str | None, batch_size: int):
    if slug is not None:
        creditor_or_fail(slug)
    report = worker.run(on=_date(on), at=_time(at), slug=slug, batch_size=batch_size, progress=click.echo)
    click.echo(report.summary())
    for reason, count in report.waiting.most_common():
        click.echo(f"  waiting, {count}: {reason_words(reason)}")
    if report.failed_batches:
        raise click.ClickException(f"{report.failed_batches} batches failed (see the log); run again")
    if slug is None and on is None:  # a whole run of today succeeded: its time, for /metrics
        record_success("dunning")
        db.session.commit()


@dunning.command("preview", help="What a run would send now for a creditor, and why the rest waits.")
@click.option("--creditor", "slug", required=True)
@click.option("--date", "on", help=DATE_HELP)
@click.option("--at", "at", default="10:00", show_default=True, help=AT_HELP)
def preview_command(slug: str, on: str | None, at: str):
    creditor = creditor_or_fail(slug)
    report, lines = worker.preview(creditor, on=_date(on), at=_time(at))
    for line in lines:
        if line.action == "send":
            fee = f", fee {format_money(line.fee, creditor.currency, 'en_GB')}" if line.fee else ""
            click.echo(f"send  {line.number:<14} {line.customer[:30]:<30} step {line.step} by {line.channel}{fee}")
    for line in lines:
        if line.action != "send":
            until = f" (looks again {line.next_on.isoformat()})" if line.next_on else ""
            word = "waits" if line.action == "wait" else "stops"
            click.echo(f"{word} {line.number:<14} {line.customer[:30]:<30} {reason_words(line.reason)}{until}")
    click.echo(f"{report.messages} messages would go carrying {report.notices} steps; "
               f"{sum(report.waiting.values())} bills wait, {sum(report.stopped.values())} stop.")


# --- plans ---------------------------------------------------------------------------------------------------


@dunning.group(cls=AppGroup, help="A creditor's dunning plans (versioned: an edit saves a new version).")
def plans():
    pass


def read_plan_file(path: Path) -> Any:
    """A plan from a .json, .yaml or .yml file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    try:
        return yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path} is not valid {'YAML' if path.suffix != '.json' else 'JSON'}: {exc}") \
            from None


def _plan_or_fail(creditor_id: int, name: str, version: int | None) -> Plan:
    plan = services.find_plan(creditor_id, name, version)
    if plan is None:
        raise click.ClickException(f"No plan {name!r}{f' version {version}' if version else ''} "
                                   "('flask dunning plans list' shows them).")
    return plan


def _describe(plan: Plan, currency: str) -> None:
    marker = " (default)" if plan.is_default else ""
    click.echo(f"{plan.name} v{plan.version}{marker}: {Jurisdiction.label_of(plan.jurisdiction)}, "
               f"saved {plan.created_at:%Y-%m-%d} by {plan.created_by}")
    for step in plan.steps:
        when = f"{step.offset_days:+d} days from the due date" if step.anchor == "due_date" \
            else f"{step.offset_days} days after step {step.position - 1}"
        extras = [f"fee {format_money(step.fee, currency, 'en_GB')}" if step.fee else "",
                  f"{step.deadline_days} days to pay" if step.deadline_days else "",
                  "starts the hand-off" if step.starts_hand_off else "", "adds interest" if step.adds_interest else "",
                  "flat fee (businesses)" if step.flat_fee else ""]
        click.echo(f"  {step.position}. {StepKind.label_of(step.kind)}, {when}, by {' > '.join(step.channels)}"
                   + "".join(f", {extra}" for extra in extras if extra))


@plans.command("create", help="Save a plan from a JSON or YAML file (a new version if the name exists).")
@click.argument("slug")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--default/--not-default", default=None, help="Make it the default plan (the first plan is).")
def create_plan(slug: str, path: Path, default: bool | None):
    creditor = creditor_or_fail(slug)
    data = read_plan_file(path)
    if default is not None and isinstance(data, dict):
        data = {**data, "default": default}
    with cli_transaction("Plan not saved"):
        plan = services.save_plan(creditor, data, actor=ACTOR)
        name, version, is_default = plan.name, plan.version, plan.is_default
    click.echo(f"Saved {name} version {version}{' (the default)' if is_default else ''}.")


@plans.command("list", help="A creditor's plans, every version.")
@click.argument("slug")
def list_plans(slug: str):
    creditor = creditor_or_fail(slug)
    found = services.plans_of(creditor.id)
    if not found:
        click.echo("No plans: the portal sends no reminders for this creditor.")
    for plan in found:
        _describe(plan, creditor.currency)


@plans.command("show", help="A plan as JSON: the file it could be saved from, texts included.")
@click.argument("slug")
@click.argument("name")
@click.option("--version", type=int)
def show_plan(slug: str, name: str, version: int | None):
    creditor = creditor_or_fail(slug)
    plan = _plan_or_fail(creditor.id, name, version)
    click.echo(json.dumps(services.plan_as_data(plan), indent=2, ensure_ascii=False))


@plans.command("default", help="Make a plan (its latest version, or --version) the one new bills start with.")
@click.argument("slug")
@click.argument("name")
@click.option("--version", type=int)
def default_command(slug: str, name: str, version: int | None):
    creditor = creditor_or_fail(slug)
    plan = _plan_or_fail(creditor.id, name, version)
    with cli_transaction("Default not changed"):
        services.set_default(creditor, plan)
        label = f"{plan.name} v{plan.version}"
    click.echo(f"New bills of {slug} start with {label}.")


@plans.command("assign", help="Remind one invoice by this plan (its latest version, or --version).")
@click.argument("slug")
@click.argument("number")
@click.argument("name")
@click.option("--version", type=int)
def assign_command(slug: str, number: str, name: str, version: int | None):
    creditor = creditor_or_fail(slug)
    invoice = find_invoice(creditor, number)
    if invoice is None:
        raise click.ClickException(f"No invoice {number} of {slug}.")
    plan = _plan_or_fail(creditor.id, name, version)
    with cli_transaction("Plan not assigned"):
        services.assign_plan(invoice, plan, actor=ACTOR, today=local_today(creditor.country, utcnow()))
        nxt = invoice.dunning_next_on
    click.echo(f"Invoice {number} follows {plan.name} v{plan.version}; "
               + (f"its next step is due {nxt.isoformat()}." if nxt else "no step is left for it."))


@plans.command("preview", help="A step's text filled for a sample bill or a real one (--invoice), before saving.")
@click.argument("slug")
@click.argument("source")
@click.option("--step", "position", type=int, default=1, show_default=True)
@click.option("--locale", help="The language (default: the creditor's).")
@click.option("--invoice", "number", help="Fill it for this invoice of the creditor.")
def preview_text(slug: str, source: str, position: int, locale: str | None, number: str | None):
    """SOURCE: a plan file (.json, .yaml) or the name of a saved plan."""
    creditor = creditor_or_fail(slug)
    path = Path(source)
    plan: Any = read_plan_file(path) if path.suffix.lower() in (".json", ".yaml", ".yml") \
        else _plan_or_fail(creditor.id, source, None)
    invoice = None
    if number:
        invoice = find_invoice(creditor, number)
        if invoice is None:
            raise click.ClickException(f"No invoice {number} of {slug}.")
    try:
        rendered = services.preview_step(creditor, plan, position, locale or languages_of(creditor)[0],
                                         invoice=invoice)
    except InvalidData as exc:
        raise click.ClickException("Cannot preview:\n" + "\n".join(f"  {k}: {v}" for k, v in exc.errors.items())) \
            from None
    finally:
        db.session.rollback()
    for label, text in (("Subject", rendered.subject), ("Body", rendered.body), ("SMS", rendered.sms)):
        if text:
            click.echo(f"--- {label} ({rendered.locale}) ---\n{text}")


# --- exclusions and settings ------------------------------------------------------------------------------


@dunning.command("exclude", help="Take an invoice or a customer out of the run (--include puts it back).")
@click.argument("slug")
@click.option("--invoice", "number", help="An invoice number.")
@click.option("--customer", "ref", help="A customer's reference (external_ref).")
@click.option("--include", is_flag=True, help="Put it back instead.")
def exclude_command(slug: str, number: str | None, ref: str | None, include: bool):
    creditor = creditor_or_fail(slug)
    if bool(number) == bool(ref):
        raise click.UsageError("Give --invoice or --customer.")
    today = local_today(creditor.country, utcnow())
    with cli_transaction("Nothing changed"):
        if number:
            invoice = find_invoice(creditor, number)
            if invoice is None:
                raise click.ClickException(f"No invoice {number} of {slug}.")
            services.exclude_invoice(invoice, not include, actor=ACTOR, today=today)
            what = f"Invoice {number}"
        else:
            customer = db.session.scalar(select(Customer).where(Customer.creditor_id == creditor.id,
                                                                Customer.external_ref == ref))
            if customer is None:
                raise click.ClickException(f"No customer {ref} of {slug}.")
            count = services.exclude_customer(customer, not include, actor=ACTOR, today=today)
            what = f"Customer {ref} ({count} bills)"
    click.echo(f"{what} {'back in' if include else 'out of'} the run.")


@dunning.command("settings", help="Show a creditor's dunning settings, or change those given.")
@click.argument("slug")
@click.option("--languages", help="The languages its steps are written in: en,nb,de.")
@click.option("--interval-days", type=int, help="At most one message to a customer in this many days.")
@click.option("--quiet", help="Quiet hours for SMS and e-mail, from-until: 21-8.")
@click.option("--consumer-default-notice/--no-consumer-default-notice", default=None,
              help="Germany: the invoices tell consumers they are in default 30 days after the due date.")
def settings_command(slug: str, languages: str | None, interval_days: int | None, quiet: str | None,
                     consumer_default_notice: bool | None):
    creditor = creditor_or_fail(slug)
    quiet_from = quiet_until = None
    if quiet is not None:
        try:
            quiet_from, quiet_until = (int(part) for part in quiet.split("-"))
        except ValueError:
            raise click.BadParameter("two hours, from-until: 21-8", param_hint="--quiet") from None
    if any(v is not None for v in (languages, interval_days, quiet, consumer_default_notice)):
        with cli_transaction("Settings not changed", {"languages": "--languages",
                                                      "message_interval_days": "--interval-days",
                                                      "quiet_from": "--quiet", "quiet_until": "--quiet"}):
            save_settings(creditor, languages=languages.split(",") if languages else None,
                          message_interval_days=interval_days, quiet_from=quiet_from, quiet_until=quiet_until,
                          consumer_default_notice=consumer_default_notice)
    settings = settings_of(creditor)
    quiet_hours = f"{settings.quiet_from:02d}:00–{settings.quiet_until:02d}:00"
    click.echo(f"{slug}: languages {', '.join(languages_of(creditor))}; at most one message in "
               f"{settings.message_interval_days} days; quiet {quiet_hours}"
               + ("; consumers are told of default after 30 days" if settings.consumer_default_notice else ""))
