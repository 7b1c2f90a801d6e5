"""`flask resolutions`: a creditor's self-service rules, the daily run, and agents' answers
(until the back office has its own screens for them)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.commands import cli_transaction
from app.core.dates import local_today
from app.core.jobs import record_success
from app.creditors.commands import creditor_or_fail
from app.extensions import db
from app.models import utcnow
from app.money import format_money
from app.resolutions import daily, deferrals, disputes
from app.resolutions.models import Resolution, Status
from app.resolutions.offer_rules import plan_min_balance

#: option -> (Creditor column, help). Money in minor units (øre, cent).
RULES: dict[str, tuple[str, str]] = {
    "--promise-max-days": ("promise_max_days", "Latest promised date, in days from today (0: no promises)."),
    "--grace-days": ("grace_days", "Days after a promised date or an instalment before it counts as broken."),
    "--deferral-max-days": ("deferral_max_days", "Latest new due date granted at once, in days after the due "
                                                 "date or today (0: no deferrals)."),
    "--deferral-max-count": ("deferral_max_count", "Deferrals granted at once per invoice; more become requests."),
    "--deferral-fee": ("deferral_fee", "Fee for a deferral, in minor units."),
    "--plan-max-months": ("plan_max_months", "Most monthly instalments (below 2: no instalment plans)."),
    "--plan-min-instalment": ("plan_min_instalment", "Smallest instalment, in minor units."),
    "--plan-min-balance": ("plan_min_balance", "Least balance a plan is offered for, in minor units (0: the "
                                               "currency's, see docs/instalments.md)."),
    "--plan-fee": ("plan_fee", "Fee for an instalment plan, in minor units."),
    "--plan-interest-bp": ("plan_interest_bp", "Yearly interest on a plan, in basis points (1000 = 10 %)."),
}


@click.group(cls=AppGroup, help="Disputes, promises to pay, deferrals and instalment plans.")
def resolutions():
    pass


def _rule_options(command):
    for flag, (_column, help_text) in reversed(RULES.items()):
        command = click.option(flag, type=click.IntRange(0, 10_000_000), help=help_text)(command)
    return click.option("--undisputed-payable/--undisputed-held", default=None,
                        help="While a dispute of some lines is open, does the bill page suggest paying the part "
                             "not disputed? (It can always be paid; held: the page says they may wait.)")(command)


@resolutions.command("rules", help="Show a creditor's self-service rules, or change those given.")
@click.argument("slug")
@_rule_options
def rules(slug: str, undisputed_payable: bool | None, **given):
    creditor = creditor_or_fail(slug)
    changes = {RULES["--" + name.replace("_", "-")][0]: value for name, value in given.items() if value is not None}
    if undisputed_payable is not None:
        changes["dispute_partial_payable"] = undisputed_payable
    if changes:
        with cli_transaction("Rules not changed"):
            for column, value in changes.items():
                setattr(creditor, column, value)
            db.session.flush()
    cur = creditor.currency
    click.echo(f"{creditor.slug}:")
    click.echo(f"  promise to pay: up to {creditor.promise_max_days} days ahead, {creditor.grace_days} grace days")
    click.echo(f"  deferral: up to {creditor.deferral_max_days} days, {creditor.deferral_max_count} time(s), "
               f"fee {format_money(creditor.deferral_fee, cur, 'en')}")
    click.echo(f"  instalments: up to {creditor.plan_max_months} months, at least "
               f"{format_money(creditor.plan_min_instalment, cur, 'en')} each, for balances from "
               f"{format_money(plan_min_balance(creditor), cur, 'en')}, fee "
               f"{format_money(creditor.plan_fee, cur, 'en')}, interest {creditor.plan_interest_bp / 100:g} % a year")
    click.echo("  undisputed part during a dispute: always payable, "
               f"{'suggested' if creditor.dispute_partial_payable else 'not suggested (the customer may wait)'}")


@resolutions.command("run", help="The daily run: reminders before promised dates and instalments, broken promises "
                                 "and plans (the process resumes), kept ones closed. Safe to run more often.")
@click.option("--creditor", "slug", help="Only this creditor's.")
def run(slug: str | None):
    creditor_id = creditor_or_fail(slug).id if slug else None
    now = utcnow()
    with cli_transaction("Run failed"):
        report = daily.run_due(lambda country: local_today(country, now), creditor_id=creditor_id)
        if creditor_id is None:  # a whole run: its time, for /metrics (committed with the run)
            record_success("resolutions")
    click.echo(str(report))


@resolutions.command("list", help="List resolutions waiting for an agent (or all with --all).")
@click.option("--creditor", "slug", help="Only this creditor's.")
@click.option("--all", "show_all", is_flag=True, help="Every status, newest first.")
def list_resolutions(slug: str | None, show_all: bool):
    query = select(Resolution).order_by(Resolution.id.desc())
    if slug:
        query = query.where(Resolution.creditor_id == creditor_or_fail(slug).id)
    if not show_all:
        query = query.where(Resolution.status == Status.OPEN)
    for r in db.session.scalars(query.limit(200)):
        invoice = r.invoice
        extra = r.reason or (r.new_date.isoformat() if r.new_date else "")
        click.echo(f"{r.reference}  {r.kind:<8} {r.status:<9} invoice {invoice.number}  "
                   f"{format_money(r.amount or 0, invoice.currency, 'en')}  {extra}")


def _find(reference: str) -> Resolution:
    found = db.session.scalar(select(Resolution).where(Resolution.reference == reference))
    if found is None:
        raise click.ClickException(f"No resolution {reference!r} ('flask resolutions list' shows the open ones).")
    return found


@resolutions.command("answer-dispute", help="Answer a dispute: --upheld or --rejected, with words the customer reads.")
@click.argument("reference")
@click.option("--upheld/--rejected", required=True, help="Whether the creditor agrees with the customer.")
@click.option("--message", required=True, help="The answer, as the customer will read it.")
@click.option("--agent", default="agent", show_default=True, help="Who answers (recorded).")
def answer_dispute(reference: str, upheld: bool, message: str, agent: str):
    dispute = _find(reference)
    with cli_transaction("Dispute not answered"):
        disputes.answer_dispute(dispute, Status.UPHELD if upheld else Status.REJECTED, message, actor=agent)
    click.echo(f"{reference}: {dispute.status}; invoice {dispute.invoice.number} is {dispute.invoice.status}.")


@resolutions.command("decide-deferral", help="Grant or decline a request for more time beyond the rules.")
@click.argument("reference")
@click.option("--grant/--decline", required=True)
@click.option("--message", help="Words for the customer.")
@click.option("--agent", default="agent", show_default=True, help="Who decides (recorded).")
def decide_deferral(reference: str, grant: bool, message: str | None, agent: str):
    deferral = _find(reference)
    with cli_transaction("Request not decided"):
        deferrals.decide_deferral(deferral, grant, message, actor=agent)
    click.echo(f"{reference}: {deferral.status}; invoice {deferral.invoice.number} is due {deferral.invoice.due_date}.")
