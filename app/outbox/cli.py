"""`flask outbox run|dead|replay|bounces`: the dispatcher, the dead letters an operator can look at and replay,
and the bounces that came back by mail."""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import AppGroup

from app.commands import cli_transaction, stop_on_signals
from app.core.jobs import Heartbeat, record_success
from app.core.priority import lower_priority
from app.creditors.commands import creditor_or_fail
from app.extensions import db
from app.outbox.dispatcher import DispatchReport, run_once
from app.outbox.services import dead_messages, replay

log = logging.getLogger(__name__)


@click.group(cls=AppGroup, help="Deliver the outbox (e-mail) and look after its dead letters.")
def outbox():
    pass


@outbox.command(
    "run",
    help="Deliver due messages, then wait and do it again until stopped (Ctrl-C or SIGTERM finish the "
    "message in hand first). With --once: deliver what is due now, print the counts and exit. Run one "
    "per host or several on PostgreSQL (they share the work); one on SQLite.",
)
@click.option("--once", is_flag=True, help="Process what is due now and exit.")
@click.option("--batch", type=click.IntRange(1, 1000), default=None,
              help="Messages claimed per transaction [default: OUTBOX_BATCH_SIZE, 50].")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=None,
              help="Seconds to wait when nothing is due [default: OUTBOX_POLL_SECONDS, 5].")
def run(once: bool, batch: int | None, interval: float | None):
    if once:
        report = run_once(batch)
        record_success("outbox")
        db.session.commit()
        click.echo(f"Outbox: {report}.")
        return
    interval = interval or current_app.config["OUTBOX_POLL_SECONDS"]
    stop = stop_on_signals()
    lower_priority()  # WORKER_NICE: the pages first (app/core/priority.py)
    total = DispatchReport()
    heartbeat = Heartbeat("outbox")
    click.echo(f"Outbox dispatcher running (every {interval:g} s when idle); Ctrl-C to stop.", err=True)
    while not stop.is_set():
        try:
            report = run_once(batch)
            if heartbeat.beat():  # its last success, for /metrics
                db.session.commit()
        except Exception:  # the database went away, say: log it and try again after the pause
            log.exception("outbox run failed; trying again in %s s", interval)
            db.session.remove()  # the next run starts on a fresh session (and connection)
            report = DispatchReport()
        if report.claimed:
            click.echo(f"Outbox: {report}.")
            total.add(report)
        stop.wait(interval)
    click.echo(f"Outbox dispatcher stopped: {total}.", err=True)


@outbox.command("dead", help="List dead messages, newest first: id, created, kind, recipient, attempts, last error.")
@click.option("--creditor", "slug", default=None, help="Only this creditor's messages.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
def dead(slug: str | None, limit: int):
    creditor_id = creditor_or_fail(slug).id if slug else None
    messages = dead_messages(creditor_id=creditor_id, limit=limit)
    if not messages:
        click.echo("No dead messages.", err=True)
        return
    for message in messages:
        click.echo("\t".join((
            str(message.id), f"{message.created_at:%Y-%m-%d %H:%M}", message.kind, message.recipient,
            str(message.attempts), (message.last_error or "").replace("\n", " "),
        )))


@outbox.command("replay", help="Put dead message ID back in the queue with a fresh set of attempts.")
@click.argument("message_id", type=int)
def replay_command(message_id: int):
    with cli_transaction("Not replayed"):
        message = replay(message_id)
        if message is None:
            raise click.ClickException(f"No outbox message {message_id} ('flask outbox dead' lists them).")
    click.echo(f"Message {message_id} is queued again; 'flask outbox run' delivers it.")


@outbox.command(
    "bounces",
    help="Read a mailbox (mbox) of bounces, delivery status notifications (RFC 3464) that came back to "
    "MAIL_FROM, and record each permanent failure of one of our e-mails, found by its Message-ID: the "
    "e-mail is bounced and its sender hears of it (a dunning reminder goes by the next channel, a letter "
    "at the last). Delays, other mail and bounces known already change nothing; safe to run again on "
    "the same file. docs/operations.md.",
)
@click.option("--mbox", "path", required=True, type=click.Path(exists=True, dir_okay=False, readable=True),
              help="The mbox file the MTA delivers bounces to.")
def bounces(path: str):
    import mailbox

    from app.outbox.feedback import parse_bounce, record_bounce

    counts = {"recorded": 0, "repeat": 0, "unknown": 0}
    ignored = 0
    with cli_transaction("Bounces not recorded"):
        box = mailbox.mbox(path, create=False)
        try:
            for key in box.iterkeys():
                found = parse_bounce(box.get_bytes(key))
                if not found:
                    ignored += 1
                for bounce in found:
                    counts[record_bounce(bounce)] += 1
        finally:
            box.close()
    click.echo(f"Bounces: {counts['recorded']} bounce recorded, {counts['repeat']} known already, "
               f"{counts['unknown']} not found; {ignored} messages ignored (not a permanent failure of ours).")
