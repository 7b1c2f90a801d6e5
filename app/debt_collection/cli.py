"""`flask collection`: partners (their endpoint, secrets and API keys), each creditor's policy, and
the run that hands off what is eligible (cron, every few minutes; safe in parallel)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.commands import cli_transaction
from app.core.dates import local_today, parse_date
from app.core.jobs import record_success
from app.creditors.commands import creditor_or_fail
from app.creditors.models import Creditor
from app.debt_collection import partners as service
from app.debt_collection.models import Partner, Policy
from app.debt_collection.services import reason_words
from app.debt_collection.worker import run as run_hand_off
from app.extensions import db
from app.models import utcnow


def partner_or_fail(slug: str) -> Partner:
    partner = service.find_partner(slug)
    if partner is None:
        raise click.ClickException(f"No partner {slug!r} ('flask collection partners list' shows them).")
    return partner


@click.group(cls=AppGroup, help="Debt collection: partners, policies and the hand-off.")
def collection():
    pass


@collection.group(cls=AppGroup, help="Collection partners.")
def partners():
    pass


@partners.command("add", help="Add a partner. Prints its signing secret and API key once: give both to the partner.")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--endpoint", required=True, help="Where cases are delivered (https, an allowed host in production).")
@click.option("--page-url", help="The partner's page of a case, with {reference}: linked from the bill page.")
@click.option("--phone")
@click.option("--email")
@click.option("--website")
def add(slug, name, endpoint, page_url, phone, email, website):
    with cli_transaction("Partner not added", {"endpoint": "--endpoint", "case_page_url": "--page-url"}):
        made = service.add_partner(slug, name, endpoint, case_page_url=page_url, phone=phone, email=email,
                                   website=website)
    click.echo(f"Partner {made.partner.slug} added.")
    click.echo(f"Signing secret (Standard Webhooks): {made.signing_secret}")
    click.echo(f"API key: {made.api_key}")
    click.echo("Both are shown only now.", err=True)


@partners.command("list", help="Every partner, its endpoint, its state and the creditors whose bills go to it.")
def list_partners():
    users: dict[int, list[str]] = {}
    for partner_id, slug, enabled in db.session.execute(
            select(Policy.partner_id, Creditor.slug, Policy.enabled).join(Creditor, Creditor.id == Policy.creditor_id)
            .order_by(Creditor.slug)):
        users.setdefault(partner_id, []).append(slug if enabled else f"{slug} (off)")
    for partner in db.session.scalars(select(Partner).order_by(Partner.slug)):
        state = "enabled" if partner.enabled else f"disabled: {partner.disabled_reason}"
        live = sum(1 for s in partner.secrets if s.retired_at is None)
        creditors = ", ".join(users.get(partner.id, [])) or "no creditor"
        click.echo(f"{partner.slug:16} {partner.name:30} {partner.endpoint_url}  [{state}; {live} live secret(s); "
                   f"{creditors}]")


@partners.command("api-key", help="A new API key for the partner (the old ones keep working until revoked).")
@click.argument("slug")
def api_key(slug):
    partner = partner_or_fail(slug)
    with cli_transaction("No key made"):
        key = service.issue_api_key(partner)
    click.echo(key)


@partners.command("rotate-secret", help="A new signing secret, signing next to the old one until --finish retires "
                                        "the old one (when the partner verifies with the new one).")
@click.argument("slug")
@click.option("--finish", is_flag=True, help="Retire every secret but the newest.")
def rotate_secret(slug, finish):
    partner = partner_or_fail(slug)
    with cli_transaction("Not rotated"):
        if finish:
            retired = service.finish_rotation(partner)
        else:
            secret = service.rotate_secret(partner)
    if finish:
        click.echo(f"{retired} old secret(s) retired; deliveries are signed with the newest only.")
    else:
        click.echo(f"New signing secret (both sign until --finish): {secret}")


@partners.command("enable", help="Deliver to the partner again (after its endpoint answered 410 Gone, say); "
                                 "replay its dead deliveries with `flask outbox replay`.")
@click.argument("slug")
def enable(slug):
    partner = partner_or_fail(slug)
    with cli_transaction("Not enabled"):
        service.set_enabled(partner, True)
    click.echo(f"{partner.slug} is enabled.")


@partners.command("disable", help="Stop handing off to and delivering to the partner.")
@click.argument("slug")
@click.option("--reason", default="disabled by an operator")
def disable(slug, reason):
    partner = partner_or_fail(slug)
    with cli_transaction("Not disabled"):
        service.set_enabled(partner, False, reason)
    click.echo(f"{partner.slug} is disabled.")


@collection.command("policy", help="When CREDITOR's unpaid bills go to a partner. Unset options keep their value "
                                   "(defaults: no minimum, 30 days past due, 14 days after the final reminder).")
@click.argument("creditor_slug")
@click.option("--partner", "partner_slug", required=True)
@click.option("--min-balance", type=int, help="Minor units.")
@click.option("--days-past-due", type=int)
@click.option("--days-after-final-reminder", type=int)
@click.option("--keep-payments/--no-keep-payments", default=None,
              help="Whether the bill page still takes payments after the hand-off (each is reported to the partner).")
@click.option("--on/--off", "enabled", default=None)
def policy(creditor_slug, partner_slug, min_balance, days_past_due, days_after_final_reminder, keep_payments, enabled):
    creditor = creditor_or_fail(creditor_slug)
    partner = partner_or_fail(partner_slug)
    with cli_transaction("Policy not set", {"min_balance": "--min-balance", "days_past_due": "--days-past-due",
                                            "days_after_final_reminder": "--days-after-final-reminder"}):
        found = service.set_policy(creditor, partner, min_balance=min_balance, days_past_due=days_past_due,
                                   days_after_final_reminder=days_after_final_reminder, keep_payments=keep_payments,
                                   enabled=enabled)
    click.echo(f"{creditor.slug} -> {partner.slug}: {'on' if found.enabled else 'off'}, at least {found.min_balance} "
               f"owed, {found.days_past_due} days past due, {found.days_after_final_reminder} days after the final "
               f"reminder; payments on the bill page after the hand-off: {'yes' if found.keep_payments else 'no'}.")


@collection.command("run", help="Hand off every eligible bill to its creditor's partner (or, with --dry-run, list "
                                "them and change nothing). Safe to run from cron every few minutes, in parallel.")
@click.option("--dry-run", is_flag=True)
@click.option("--creditor", "slug")
@click.option("--date", "on", help="Decide as on this date where each creditor is (tests, the demo); default: today.")
def run(dry_run, slug, on):
    creditor_id = creditor_or_fail(slug).id if slug else None
    day = parse_date(on) if on else None
    if on and day is None:
        raise click.BadParameter(f"{on!r} is not a date (2026-12-31)", param_hint="--date")
    report = run_hand_off((lambda _country: day) if day else (lambda country: local_today(country, utcnow())),
                          dry_run=dry_run, creditor_id=creditor_id, on=day)
    for number in report.eligible:
        click.echo(f"would hand off {number}")
    for number, case_id in report.handed_off:
        click.echo(f"handed off {number} as {case_id}")
    for number, reasons in report.skipped.items():
        click.echo(f"kept {number}: {' '.join(reason_words(r) for r in reasons)}")
    verb = "would be handed off" if dry_run else "handed off"
    click.echo(f"{len(report.eligible) if dry_run else len(report.handed_off)} {verb}, {len(report.skipped)} kept, "
               f"{len(report.failed)} failed.")
    if report.failed:
        raise SystemExit(1)
    if not dry_run and slug is None:  # a whole run succeeded: its time, for /metrics
        record_success("collection")
        db.session.commit()


@collection.command("demo-partner", help="Play the demo collection partner on this machine (development only): "
                                         "receive and verify deliveries, acknowledge each case and, with --pay, "
                                         "report it paid through the partner API.")
@click.option("--pay/--no-pay", default=True, show_default=True)
def demo_partner(pay):
    from flask import current_app

    from app.debt_collection.demo_partner import DEMO_PARTNER, serve

    if current_app.config["PORTAL_ENV"] == "production":
        raise click.ClickException("The demo partner does not run in production.")
    partner = partner_or_fail(DEMO_PARTNER)
    with cli_transaction("No key made"):
        key = service.issue_api_key(partner)
        secrets = service.live_secrets(partner)
        endpoint = partner.endpoint_url
    api_base = current_app.config["PORTAL_BASE_URL"].rstrip("/") + "/api/partner/v1"
    db.session.remove()
    serve(endpoint, secrets, api_base, key, pay=pay, say=click.echo)
