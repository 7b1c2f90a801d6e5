"""`flask support`: customers' contact requests, and an agent's reply from the command line."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.commands import cli_transaction
from app.creditors.commands import creditor_or_fail
from app.extensions import db
from app.support import services
from app.support.models import RequestStatus, SupportRequest


@click.group(cls=AppGroup, help="Customers' contact requests from bill pages.")
def support():
    pass


@support.command("list", help="List contact requests, newest first (open ones unless --status says otherwise).")
@click.option("--creditor", "slug", help="Only this creditor's.")
@click.option("--status", type=click.Choice(RequestStatus.values()), default=RequestStatus.OPEN.value,
              show_default=True)
def list_requests(slug: str | None, status: str):
    query = select(SupportRequest).where(SupportRequest.status == status).order_by(SupportRequest.id.desc())
    if slug:
        query = query.where(SupportRequest.creditor_id == creditor_or_fail(slug).id)
    for request in db.session.scalars(query.limit(200)):
        last = request.messages[-1]
        preview = " ".join(last.body.split())[:60]
        click.echo(f"{request.reference}  {request.topic:<15} invoice {request.invoice.number}  "
                   f"{request.contact_method:<5} {last.author}: {preview}")


@support.command("reply", help="Answer a contact request: shown on the bill page and e-mailed to the customer.")
@click.argument("reference")
@click.option("--message", required=True, help="The answer, as the customer will read it.")
@click.option("--agent", default="Customer service", show_default=True, help="The name the customer sees.")
def reply(reference: str, message: str, agent: str):
    request = db.session.scalar(select(SupportRequest).where(SupportRequest.reference == reference))
    if request is None:
        raise click.ClickException(f"No contact request {reference!r} ('flask support list' shows the open ones).")
    with cli_transaction("Reply not sent"):
        services.reply(request, message, agent_name=agent, actor=f"agent:{agent}")
    click.echo(f"{reference}: answered; the customer gets an e-mail when `flask outbox run` delivers it.")
