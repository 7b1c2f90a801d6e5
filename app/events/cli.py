"""`flask events`: a creditor's webhook endpoints (add, list, types, enable, disable, rotate the secret),
the delivery log, replay, and the feed as the API shows it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click
from flask.cli import AppGroup

from app.commands import cli_transaction
from app.core.dates import utc_iso
from app.creditors.commands import creditor_or_fail
from app.events import feed
from app.events import services as service
from app.events.catalogue import TYPES
from app.events.deliveries import event_json
from app.events.models import WebhookEndpoint


def endpoint_or_fail(creditor_id: int, public_id: str) -> WebhookEndpoint:
    endpoint = service.find_endpoint(creditor_id, public_id)
    if endpoint is None:
        raise click.ClickException(f"No endpoint {public_id!r} of this creditor ('flask events endpoints list "
                                   "CREDITOR' shows them).")
    return endpoint


def _types(value: str | None) -> list[str]:
    return [t for t in (value or "").split(",") if t.strip()]


def _when(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("a date and time with its offset, e.g. 2026-12-06T08:00:00Z") from None
    if when.tzinfo is None:
        raise click.BadParameter("a date and time with its offset, e.g. 2026-12-06T08:00:00Z")
    return when


@click.group(cls=AppGroup, help="Events to creditors: webhook endpoints, deliveries, replay, the feed.")
def events():
    pass


@events.group(cls=AppGroup, help="A creditor's webhook endpoints.")
def endpoints():
    pass


@endpoints.command("add", help="Add an endpoint for CREDITOR. Prints its signing secret once (whsec_…).")
@click.argument("creditor")
@click.argument("url")
@click.option("--types", help="Comma-separated event types it wants (default: every type). "
                              f"Known: {', '.join(TYPES)}")
@click.option("--description")
@click.option("--mode", type=click.Choice(["live", "test"]), default="live", show_default=True,
              help="live: gets live events only; test: gets test events only (those of test API keys' data).")
def add(creditor, url, types, description, mode):
    found = creditor_or_fail(creditor)
    with cli_transaction("Endpoint not added", {"url": "URL", "types": "--types", "description": "--description"}):
        made = service.add_endpoint(found, url, types=_types(types), description=description,
                                    livemode=mode == "live")
    click.echo(f"Endpoint {made.endpoint.public_id} added.")
    click.echo(f"Signing secret (Standard Webhooks): {made.secret}")
    click.echo("The secret is shown only now.", err=True)


@endpoints.command("list", help="CREDITOR's endpoints.")
@click.argument("creditor")
def list_endpoints(creditor):
    found = creditor_or_fail(creditor)
    rows = service.endpoints_of(found.id)
    if not rows:
        click.echo("No endpoints.")
    for endpoint in rows:
        state = ("live" if endpoint.livemode else "test") + ", " + (
            "enabled" if endpoint.enabled else f"disabled: {endpoint.disabled_reason}")
        until = endpoint.previous_until
        rotation = f"; previous secret signs until {utc_iso(until)}" if until else ""
        click.echo(f"{endpoint.public_id}  {endpoint.url}  [{state}{rotation}]  "
                   f"types: {', '.join(endpoint.types) or 'all'}")


@endpoints.command("types", help="Set the event types an endpoint wants (empty: every type).")
@click.argument("creditor")
@click.argument("endpoint")
@click.argument("types", default="")
def set_types(creditor, endpoint, types):
    found = creditor_or_fail(creditor)
    target = endpoint_or_fail(found.id, endpoint)
    with cli_transaction("Types not changed", {"types": "TYPES"}):
        service.set_types(target, _types(types))
    click.echo(f"{target.public_id} wants: {', '.join(target.types) or 'every type'}.")


@endpoints.command("enable", help="Deliver to the endpoint again (replay what it missed with `flask events replay`).")
@click.argument("creditor")
@click.argument("endpoint")
def enable(creditor, endpoint):
    target = endpoint_or_fail(creditor_or_fail(creditor).id, endpoint)
    with cli_transaction("Not enabled"):
        service.set_enabled(target, True)
    click.echo(f"{target.public_id} is enabled.")


@endpoints.command("disable", help="Stop delivering to the endpoint.")
@click.argument("creditor")
@click.argument("endpoint")
@click.option("--reason", default="disabled by an operator")
def disable(creditor, endpoint, reason):
    target = endpoint_or_fail(creditor_or_fail(creditor).id, endpoint)
    with cli_transaction("Not disabled"):
        service.set_enabled(target, False, reason)
    click.echo(f"{target.public_id} is disabled.")


@endpoints.command("rotate-secret", help="A new signing secret; the old one keeps signing next to it for "
                                         "--grace-hours (default 24, at most 168; 0: no more at once).")
@click.argument("creditor")
@click.argument("endpoint")
@click.option("--grace-hours", type=click.IntRange(0, 168), default=24, show_default=True)
def rotate_secret(creditor, endpoint, grace_hours):
    target = endpoint_or_fail(creditor_or_fail(creditor).id, endpoint)
    with cli_transaction("Not rotated"):
        secret = service.rotate_secret(target, grace=timedelta(hours=grace_hours))
    click.echo(f"New signing secret: {secret}")
    if target.previous_until is not None:
        click.echo(f"The previous secret signs too until {utc_iso(target.previous_until)}.", err=True)


@events.command("deliveries", help="CREDITOR's latest deliveries, newest first, with every try.")
@click.argument("creditor")
@click.option("--endpoint", help="Only this endpoint's.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
def deliveries(creditor, endpoint, limit):
    found = creditor_or_fail(creditor)
    target = endpoint_or_fail(found.id, endpoint) if endpoint else None
    rows = service.deliveries(found.id, endpoint=target, limit=limit)
    if not rows:
        click.echo("No deliveries.")
    for row in rows:
        replay = f" (replay of {row.delivery.replay_of})" if row.delivery.replay_of else ""
        click.echo(f"{row.delivery.id}  {row.event.public_id}  {row.event.type}  -> {row.endpoint.public_id}  "
                   f"{row.status}{replay}")
        for attempt in row.attempts:
            outcome = "ok" if attempt.succeeded else f"failed: {attempt.error}"
            click.echo(f"    {utc_iso(attempt.attempted_at)}  {attempt.response_code or '-'}  "
                       f"{attempt.duration_ms if attempt.duration_ms is not None else '-'} ms  {outcome}")


@events.command("replay", help="Send again: one delivery (--delivery ID), or every event since a time to an "
                               "endpoint (--endpoint ID --since 2026-12-06T08:00:00Z).")
@click.argument("creditor")
@click.option("--delivery", "delivery_id", type=int)
@click.option("--endpoint")
@click.option("--since")
def replay(creditor, delivery_id, endpoint, since):
    found = creditor_or_fail(creditor)
    if (delivery_id is None) == (endpoint is None) or (endpoint is not None) != (since is not None):
        raise click.UsageError("Give either --delivery, or --endpoint with --since.")
    if delivery_id is not None:
        delivery = service.find_delivery(found.id, delivery_id)
        if delivery is None:
            raise click.ClickException(f"No delivery {delivery_id} of this creditor.")
        with cli_transaction("Not replayed"):
            again = service.replay_delivery(delivery)
        click.echo(f"Delivery {delivery_id} queued again" + (f" as delivery {again.id}." if again.id != delivery_id
                                                              else "."))
        return
    target = endpoint_or_fail(found.id, endpoint)
    when = _when(since)
    with cli_transaction("Not replayed", {"since": "--since"}):
        count = service.replay_since(target, when)
    click.echo(f"{count} event(s) queued for {target.public_id}.")


@events.command("feed", help="CREDITOR's events as GET /api/v1/events shows them (JSON lines).")
@click.argument("creditor")
@click.option("--after", help="A next_cursor.")
@click.option("--limit", type=click.IntRange(1, feed.MAX_LIMIT), default=feed.DEFAULT_LIMIT, show_default=True)
def show_feed(creditor, after, limit):
    found = creditor_or_fail(creditor)
    with cli_transaction("No feed", {"after": "--after"}):
        rows, next_cursor = feed.page(found.id, after=after, limit=limit)
    for event in rows:
        click.echo(json.dumps(event_json(event), sort_keys=True))
    click.echo(f"next_cursor: {next_cursor}", err=True)
