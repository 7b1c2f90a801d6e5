"""`flask analytics rollup`: attribute new payments to the reminders that brought them and bring the
funnel's weekly rollups up to date (cron, every few minutes; docs/analytics.md)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.analytics import rollup as rollups
from app.commands import cli_transaction


@click.group(cls=AppGroup, help="Funnel analytics: attribution and the weekly rollups.")
def analytics():
    pass


@analytics.command("rollup", help="Attribute new payments and recompute the weeks whose messages, payments or "
                                  "bills changed since the last run (every week with --rebuild). One transaction; "
                                  "runs do not overlap on PostgreSQL.")
@click.option("--rebuild", is_flag=True, help="Empty the rollups and recompute every week.")
@click.option("--window-days", type=click.IntRange(1, 90), default=None,
              help="The attribution window (default: ANALYTICS_ATTRIBUTION_DAYS, 7).")
def rollup(rebuild, window_days):
    window = window_days or current_app.config["ANALYTICS_ATTRIBUTION_DAYS"]
    with cli_transaction("Rollup not done"):
        report = rollups.run(window_days=window, rebuild=rebuild)
    click.echo(f"{'rebuilt' if report.rebuilt else 'updated'}: {report.attributed_messages} message(s) given a "
               f"payment; weeks recomputed: {report.message_weeks} of messages, {report.payment_weeks} of payments, "
               f"{report.bill_weeks} of bills (attribution window {window} days).")
