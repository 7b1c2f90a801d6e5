"""`flask payments`: which providers and methods each creditor offers on its bill pages."""

from __future__ import annotations

import logging
import secrets
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from app.billing.services import find_invoice
from app.commands import cli_transaction, stop_on_signals
from app.core.dates import local_today, parse_date
from app.core.jobs import Heartbeat
from app.core.priority import lower_priority
from app.creditors.commands import creditor_or_fail
from app.extensions import db
from app.models import utcnow
from app.money import format_money, parse_amount
from app.payments.providers import creditor_gateways, offer_gateway, pay_options, withdraw_gateway
from app.payments.refunds import refunds_due
from app.payments.services import MANUAL_METHODS, record_manual_payment
from app.payments.worker import apply_received_events

log = logging.getLogger(__name__)


@click.group(cls=AppGroup, help="Choose the payment providers and methods a creditor offers.")
def payments():
    pass


@payments.command("gateways", help="List what a creditor offers, and what its bills show with this instance's keys.")
@click.argument("slug")
def list_gateways(slug: str):
    creditor = creditor_or_fail(slug)
    keys = current_app.config["PAYMENT_GATEWAYS"].get(creditor.slug, {})
    choices = creditor_gateways(creditor.id)
    if not choices:
        click.echo(f"{creditor.slug} chose no provider yet.")
    for choice in choices:
        if choice.provider in keys or choice.provider == "simulator":
            state = "keys set"
        else:
            state = "keys set in the console" if choice.credentials_encrypted else "no keys"
        flow = f", {choice.flow}" if choice.flow else ""
        click.echo(f"{choice.position}. {choice.provider}{flow}: {', '.join(choice.methods)} ({state})")
    offered = pay_options(creditor, creditor.currency, creditor.country)
    shown = "; ".join(f"{o.provider}{' (test mode)' if o.test_mode else ''}: {', '.join(o.methods)}" for o in offered)
    click.echo(f"Bills in {creditor.currency} to {creditor.country} show: {shown or 'no way to pay by card'}")


@payments.command("offer", help="Offer a provider with these methods, e.g. `offer fjordlys stripe card,vipps,klarna`.")
@click.argument("slug")
@click.argument("provider")
@click.argument("methods")
@click.option("--flow", help="stripe: element (Payment Element on our page) or checkout (Stripe's page); "
                              "adyen: session (Drop-in on our page) or link (Adyen's page).")
@click.option("--position", type=int, help="Order on the bill page (lowest first).")
def offer(slug: str, provider: str, methods: str, flow: str | None, position: int | None):
    creditor = creditor_or_fail(slug)
    with cli_transaction(f"{provider} not offered"):
        choice = offer_gateway(creditor, provider, [m.strip() for m in methods.split(",") if m.strip()],
                               flow=flow, position=position)
    click.echo(f"{creditor.slug} offers {provider}: {', '.join(choice.methods)}")


@payments.command("withdraw", help="Stop offering a provider (its past payments stay).")
@click.argument("slug")
@click.argument("provider")
def withdraw(slug: str, provider: str):
    creditor = creditor_or_fail(slug)
    with cli_transaction(f"{provider} not withdrawn"):
        if not withdraw_gateway(creditor, provider):
            raise click.ClickException(f"{creditor.slug} does not offer {provider}.")
    click.echo(f"{creditor.slug} no longer offers {provider}.")


@payments.command("refunds-due", help="Payments with money owed back to the customer (overpaid, or paid twice).")
@click.argument("slug")
def refunds(slug: str):
    creditor = creditor_or_fail(slug)
    due = refunds_due(creditor.id)
    if not due:
        click.echo(f"{creditor.slug}: nothing to refund.")
    for payment in due:
        owed = format_money(payment.refund_due, payment.currency, "en")
        click.echo(f"invoice {payment.invoice.number}: {owed} of a {payment.provider} payment "
                   f"{payment.provider_payment_id} received {payment.received_at:%Y-%m-%d}")


@payments.command("apply-events",
                  help="Apply stored provider notifications (the worker when WEBHOOKS_APPLY_INLINE is off).")
@click.option("--once", is_flag=True, help="Apply what is waiting, then exit.")
@click.option("--batch", default=100, show_default=True, help="Events per round.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds to sleep when nothing waits.")
def apply_events(once: bool, batch: int, interval: float):
    total: dict[str, int] = {}
    heartbeat = Heartbeat("payments_apply_events")
    stop = threading.Event() if once else stop_on_signals()
    if not once:
        lower_priority()  # WORKER_NICE: the pages first (app/core/priority.py)
    while not stop.is_set():
        try:
            counts = apply_received_events(limit=batch)
            if heartbeat.beat():  # its last success, for /metrics
                db.session.commit()
        except Exception:  # the database went away, say: log it and try again after the pause
            if once:
                raise
            log.exception("applying notifications failed; trying again in %s s", max(interval, 1.0))
            db.session.remove()  # the next round starts on a fresh session (and connection)
            stop.wait(max(interval, 1.0))
            continue
        for outcome, n in counts.items():
            total[outcome] = total.get(outcome, 0) + n
        if once and sum(counts.values()) < batch:
            break
        if not counts:
            stop.wait(interval)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(total.items())) or "nothing to apply"
    click.echo(f"Applied stored notifications: {summary}.")


@payments.command("record", help="Record a payment received outside the portal (at the counter, to another "
                                 "account): settled like any payment, with its receipt e-mail; reminders stop.")
@click.argument("number")
@click.option("--creditor", "slug", required=True)
@click.option("--amount", help="In the invoice's currency, e.g. 1250.50 (default: what is left to pay).")
@click.option("--on", "received_on", help="The day it was received (default: today).")
@click.option("--method", type=click.Choice(MANUAL_METHODS), default="bank_transfer", show_default=True)
@click.option("--note", help="Kept on the bill's timeline.")
def record_payment(number: str, slug: str, amount: str | None, received_on: str | None, method: str,
                   note: str | None):
    creditor = creditor_or_fail(slug)
    invoice = find_invoice(creditor, number)
    if invoice is None:
        raise click.ClickException(f"No invoice {number} of {slug}.")
    try:
        minor = parse_amount(amount, invoice.currency) if amount else max(invoice.balance, 0)
    except ValueError:
        raise click.BadParameter(f"{amount!r} is not an amount (1250.50)", param_hint="--amount") from None
    day = parse_date(received_on) if received_on else local_today(creditor.country, utcnow())
    if day is None:
        raise click.BadParameter(f"{received_on!r} is not a date (2026-12-31)", param_hint="--on")
    with cli_transaction("Payment not recorded", {"amount": "--amount", "received_on": "--on"}):
        payment = record_manual_payment(invoice, minor or 0, received_on=day, method=method,
                                        key=f"cli-{secrets.token_hex(8)}", actor="cli", note=note)
        said = format_money(payment.amount, invoice.currency, "en_GB")
        status, left = invoice.status, max(invoice.balance, 0)
    click.echo(f"Recorded {said} for {number}: it is {status}, {format_money(left, invoice.currency, 'en_GB')} "
               "left to pay.")
