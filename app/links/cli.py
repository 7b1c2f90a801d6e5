"""`flask links issue|revoke`: signed links to an invoice's bill page."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.billing.models import Invoice
from app.billing.services import find_invoice
from app.commands import cli_transaction
from app.creditors.commands import creditor_or_fail
from app.links.services import MAX_TTL_DAYS, get_signer, issue_link, revoke_links

ACTOR = "cli"
CLI_CHANNELS = ("sms", "email", "letter")
ISSUE_OPTIONS = {"channel": "--channel", "ttl_days": "--ttl-days"}


def invoice_or_fail(slug: str, number: str) -> Invoice:
    """The creditor's invoice with this number, or a ClickException."""
    creditor = creditor_or_fail(slug)
    invoice = find_invoice(creditor, number)
    if invoice is None:
        raise click.ClickException(f"Creditor {slug!r} has no invoice {number!r}.")
    return invoice


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@click.group(cls=AppGroup, help="Issue and revoke signed links to bill pages.")
def links():
    pass


@links.command(
    "issue",
    help="Issue a link to invoice NUMBER's bill page. The URL alone goes to stdout (so "
    "URL=$(flask links issue …) works); its expiry goes to stderr. The URL uses the creditor's "
    "portal domain if it has one, else PORTAL_BASE_URL.",
)
@click.argument("number")
@click.option("--creditor", "slug", required=True, help="Slug of the invoice's creditor.")
@click.option("--channel", type=click.Choice(CLI_CHANNELS), default="sms", show_default=True,
              help="How the link will reach the customer (recorded on the invoice's timeline).")
@click.option("--ttl-days", type=int, default=None,
              help=f"Days the link stays valid, 1 to {MAX_TTL_DAYS} [default: LINK_DEFAULT_TTL_DAYS, 60].")
def issue(number: str, slug: str, channel: str, ttl_days: int | None):
    config = current_app.config
    with cli_transaction("No link issued", ISSUE_OPTIONS):
        issued = issue_link(
            invoice_or_fail(slug, number), channel=channel,
            ttl_days=config["LINK_DEFAULT_TTL_DAYS"] if ttl_days is None else ttl_days,
            signer=get_signer(), base_url=config["PORTAL_BASE_URL"], actor=ACTOR,
        )
    click.echo(issued.url)
    click.echo(f"Expires {issued.link.expires_at:%Y-%m-%d %H:%M} UTC.", err=True)


@links.command("revoke", help="Revoke every live link of invoice NUMBER; prints how many were revoked.")
@click.argument("number")
@click.option("--creditor", "slug", required=True, help="Slug of the invoice's creditor.")
def revoke(number: str, slug: str):
    with cli_transaction("Links not revoked"):
        count = revoke_links(invoice_or_fail(slug, number), actor=ACTOR)
    click.echo(f"Revoked {plural(count, 'link')} of invoice {number}.")
