"""`flask privacy`: each creditor's retention period, and the run that applies it (cron, daily; safe
in parallel). docs/privacy.md says what is kept, why and for how long."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from app.audit import audit
from app.commands import cli_transaction
from app.core.dates import local_today, parse_date
from app.core.jobs import record_success
from app.creditors.commands import creditor_or_fail
from app.extensions import db
from app.models import utcnow
from app.privacy import services
from app.privacy.rules import MAX_RETENTION_MONTHS, MIN_RETENTION_MONTHS, rule_for
from app.privacy.worker import BATCH_SIZE
from app.privacy.worker import run as run_retention


@click.group(cls=AppGroup, help="Personal data: retention periods and the retention run.")
def privacy():
    pass


@privacy.command("retention", help="Show a creditor's retention period, or set it (--months) or reset it to its "
                                   "country's default (--default).")
@click.argument("slug")
@click.option("--months", type=int,
              help=f"Months after a bill closed ({MIN_RETENTION_MONTHS} to {MAX_RETENTION_MONTHS}).")
@click.option("--default", "reset", is_flag=True, help="Back to the country's default.")
def retention(slug, months, reset):
    creditor = creditor_or_fail(slug)
    if months is not None and reset:
        raise click.UsageError("--months or --default, not both")
    if months is not None or reset:
        with cli_transaction("Retention not set", {"months": "--months"}):
            services.set_retention(creditor, None if reset else months)
            audit(None, "privacy_retention_set", operator=True, creditor_id=creditor.id, record_type="creditor",
                  record_id=creditor.slug, months=months, default=reset)
    rule = rule_for(creditor.country)
    click.echo(f"{creditor.slug}: personal data of closed bills kept {services.retention_months(creditor)} months "
               f"(default {rule.default_retention_months}); invoices kept {rule.years} years by bookkeeping law.")


@privacy.command("run", help="Minimise the personal data of bills closed longer than their creditor's retention "
                             "period, and anonymise customers no bookkeeping law needs any longer. Idempotent; "
                             "safe to run from cron, in parallel.")
@click.option("--date", "on", help="Decide as on this date where each creditor is (tests, the demo); default: today.")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1, 10_000))
def run(on, batch_size):
    day = parse_date(on) if on else None
    if on and day is None:
        raise click.BadParameter(f"{on!r} is not a date (2026-12-31)", param_hint="--date")
    def today_of(creditor):
        return day or local_today(creditor.country, utcnow())

    report = run_retention(today_of, current_app.config["ATTACHMENT_DIR"], batch_size=batch_size)
    for creditor_id, done in sorted(report.by_creditor.items()):
        if done.invoices or done.customers or done.anonymised:
            audit(None, "privacy_retention_applied", operator=True, creditor_id=creditor_id, record_type="creditor",
                  record_id=creditor_id, **done.summary())
    total = report.total
    click.echo(json.dumps({**total.summary(), "failed_batches": report.failed_batches}, sort_keys=True))
    if report.failed_batches:
        db.session.commit()
        raise SystemExit(1)
    record_success("privacy")
    db.session.commit()
