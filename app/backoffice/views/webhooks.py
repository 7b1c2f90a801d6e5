"""The creditor console's webhooks: the creditor's endpoints (`app.events`), each with the event types it
gets, enabled or disabled and why, its last deliveries; a new endpoint, whose signing secret is shown on
the answer to its POST and never again; an endpoint's page with its event filter, enable and disable,
the secret's rotation (the new secret shown once, the previous one signing next to it for the grace
chosen), the delivery log with every try, and replay (one delivery, or every event since a time).

Routes as the rest of the console (`/console/<creditor_id>/webhooks...`, the creditor admin role):
another creditor's endpoint or delivery is a 404 as much as its console is. Every change is in the audit
log, never a secret; bad input is shown next to its field, translated, and changes nothing (422).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required

from app.backoffice.views import bp, console_creditor, record
from app.creditors.models import Creditor
from app.errors import Conflict, InvalidData
from app.events import services as events
from app.events.catalogue import TYPES
from app.events.models import WebhookEndpoint
from app.extensions import db
from app.i18n import country_zone
from app.models import utcnow
from app.outbox.models import OutboxStatus

LOG_SIZE = 50  # deliveries on an endpoint's page
RECENT = 5  # deliveries per endpoint on the list
GRACE_HOURS = (24, 0, 72, 168)  # the choices offered for the previous secret, the default first
CONSOLE_DISABLED = "disabled in the console"  # the reason stored when a creditor admin disables an endpoint


# --- words --------------------------------------------------------------------------------------------


def type_words() -> dict[str, str]:
    """Each event type in a few words, in the agent's language (docs/events.md, "The catalogue")."""
    return {
        "invoice.opened": _("The customer opened a link to the bill"),
        "payment.succeeded": _("A payment was booked on the bill"),
        "payment.failed": _("A payment attempt failed"),
        "payment.refunded": _("Money was paid back"),
        "dispute.opened": _("The customer disputed the bill"),
        "dispute.resolved": _("A dispute was answered"),
        "promise.created": _("The customer promised to pay by a date"),
        "promise.broken": _("A promise to pay was not kept"),
        "deferral.granted": _("More time was granted"),
        "plan.created": _("An instalment plan was agreed"),
        "plan.broken": _("An instalment was not paid in time"),
        "message.received": _("The customer wrote"),
        "contact_details.changed": _("The customer's contact details changed"),
        "reminder.sent": _("A reminder went out"),
        "reminder.failed": _("A reminder did not reach the customer"),
        "collection.handed_off": _("The bill went to the collection partner"),
        "collection.recalled": _("The bill was taken back from the collection partner"),
        "collection.closed": _("The collection partner closed the case"),
        "lead.created": _("A customer is interested in one of your content blocks"),
    }


def status_words(view: events.DeliveryView) -> str:
    if view.status == OutboxStatus.PENDING and view.attempts:
        return _("Retrying")
    words: dict[str, str] = {OutboxStatus.PENDING: _("On its way"), OutboxStatus.DELIVERED: _("Delivered"),
                             OutboxStatus.DEAD: _("Not delivered")}
    return words.get(view.status, view.status)


def disabled_words(reason: str | None) -> str:
    """Why an endpoint is disabled: the reasons the portal gives in the agent's language, an operator's own
    words (`flask events endpoints disable --reason`) as they were typed."""
    known = {CONSOLE_DISABLED: _("Disabled in the console."),
             "the endpoint answered 410 Gone": _("The endpoint answered 410 Gone, so deliveries stopped."),
             "disabled by an operator": _("Disabled by an operator."), "disabled": _("Disabled.")}
    if reason in known:
        return known[reason]
    return _("Disabled: %(reason)s", reason=reason or "")


def url_problem(code: str, url: str) -> str:
    """The endpoint service's reason (English, for operators) in the agent's language."""
    if code.startswith("at most 500"):
        return _("Please keep the address to at most 500 characters.")
    if code.startswith("at most"):
        return _("A creditor has at most %(most)s endpoints.", most=events.MAX_ENDPOINTS)
    if "user name or password" in code:
        return _("Please leave the user name and password out of the address.")
    if "not a public address" in code:
        return _("This address leads into a private network. An endpoint must be reachable from the internet.")
    if "does not resolve" in code:
        return _("This host cannot be found. Please check the address.")
    if current_app.config["PORTAL_ENV"] == "production":
        return _("Please enter a web address starting with https://, such as https://erp.example.com/hooks.")
    return _("Please enter a web address starting with https://, such as https://erp.example.com/hooks "
             "(on this test server also http://127.0.0.1 or http://localhost).")


# --- reading the forms --------------------------------------------------------------------------------


def _chosen_types() -> tuple[list[str] | None, str | None]:
    """(the types the form asks for: [] for every type; None and a problem when "only these" has none)."""
    if request.form.get("scope", "all") != "some":
        return [], None
    chosen = [t for t in request.form.getlist("types") if t in TYPES]
    if not chosen:
        return None, _("Please choose at least one event type, or all types.")
    return chosen, None


def _grace() -> timedelta | None:
    text = (request.form.get("grace_hours") or "").strip()
    if not (text.isascii() and text.isdigit()) or int(text) not in GRACE_HOURS:
        return None
    return timedelta(hours=int(text))


def _since(creditor: Creditor) -> datetime | None:
    """The time typed ("2026-12-06T09:30", as a browser's datetime-local sends it), read as the clock where
    the creditor is; None when it is no time or not in the past."""
    text = (request.form.get("since") or "").strip().replace(" ", "T")
    try:
        typed = datetime.fromisoformat(text)
        if typed.tzinfo is None:
            typed = typed.replace(tzinfo=country_zone(creditor.country))
        since = typed.astimezone(UTC)
    except (ValueError, OverflowError):  # no time; or one at the calendar's very edge (0001-01-01T00:00)
        return None
    return since if since <= utcnow() else None


def _endpoint(creditor: Creditor, endpoint_id: str) -> WebhookEndpoint:
    """The creditor's endpoint; another creditor's is a 404 as one that does not exist."""
    found = events.find_endpoint(creditor.id, endpoint_id) if len(endpoint_id) <= 40 else None
    if found is None:
        abort(404)
    return found


def audited_url(url: str) -> str:
    """The endpoint's address as the audit log keeps it: without its query, where a receiver may have put
    a token of its own."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "…" if parts.query else "", ""))


def _audit(action: str, endpoint: WebhookEndpoint, **detail: Any) -> None:
    record(action, creditor_id=endpoint.creditor_id, record_type="webhook_endpoint", record_id=endpoint.public_id,
           url=audited_url(endpoint.url), **detail)


# --- the list and a new endpoint ----------------------------------------------------------------------


def _list_page(creditor: Creditor, *, new: events.NewEndpoint | None = None, values: dict[str, Any] | None = None,
               problems: dict[str, str] | None = None, status: int = 200):
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id, page="webhooks")
    db.session.commit()  # before reading, as on an endpoint's page
    endpoints = events.endpoints_of(creditor.id)
    recent = {e.id: events.deliveries(creditor.id, endpoint=e, limit=RECENT) for e in endpoints}
    return render_template("backoffice/console/webhooks.html", creditor=creditor, endpoints=endpoints, recent=recent,
                           new=new, values=values or {"scope": "all", "types": [], "mode": "live"},
                           problems=problems or {},
                           section="webhooks", types=TYPES, type_words=type_words(), status_words=status_words,
                           disabled_words=disabled_words, full=len(endpoints) >= events.MAX_ENDPOINTS), status


@bp.get("/console/<int:creditor_id>/webhooks")
@login_required
def console_webhooks(creditor_id: int):
    return _list_page(console_creditor(creditor_id))


@bp.post("/console/<int:creditor_id>/webhooks")
@login_required
def console_add_webhook(creditor_id: int):
    """A new endpoint; its signing secret is on this answer only (stored encrypted; the page is no-store)."""
    creditor = console_creditor(creditor_id)
    url = (request.form.get("url") or "").strip()
    description = (request.form.get("description") or "").strip()
    mode = request.form.get("mode", "live")  # the form's default; anything else but "test" is refused
    values = {"url": url, "description": description, "scope": request.form.get("scope", "all"),
              "types": request.form.getlist("types"), "mode": mode}
    types, problem = _chosen_types()
    problems = {"types": problem} if problem else {}
    if mode not in ("live", "test"):
        problems["mode"] = _("Choose a live endpoint or a test endpoint.")
    if len(description) > 200:
        problems["description"] = _("Please keep this to one line of at most %(most)s characters.", most=200)
    new = None
    if not problems:
        try:
            new = events.add_endpoint(creditor, url, types=types, description=description or None,
                                      livemode=mode == "live")
        except InvalidData as exc:
            db.session.rollback()
            creditor = console_creditor(creditor_id)
            problems = {name: url_problem(code, url) if name == "url" else _("Something in the form was not right.")
                        for name, code in exc.errors.items()}
    if new is None:
        return _list_page(creditor, values=values, problems=problems, status=422)
    _audit("console_webhook_added", new.endpoint, types=new.endpoint.types, description=new.endpoint.description,
           mode=mode)
    db.session.commit()
    return _list_page(creditor, new=new)


# --- one endpoint -------------------------------------------------------------------------------------


def _endpoint_page(creditor: Creditor, endpoint: WebhookEndpoint, *, new_secret: str | None = None,
                   problems: dict[str, str] | None = None, values: dict[str, Any] | None = None, status: int = 200):
    record("console_viewed", creditor_id=creditor.id, record_type="webhook_endpoint", record_id=endpoint.public_id,
           page="webhook")
    db.session.commit()  # before reading: what the page shows is read once, not again after the commit
    log = events.deliveries(creditor.id, endpoint=endpoint, limit=LOG_SIZE)
    now = utcnow()
    previous_until = endpoint.previous_until if endpoint.previous_until and endpoint.previous_until > now else None
    return render_template("backoffice/console/webhook.html", creditor=creditor, endpoint=endpoint, log=log,
                           new_secret=new_secret, previous_until=previous_until, problems=problems or {},
                           values=values or _types_values(endpoint), section="webhooks", types=TYPES,
                           type_words=type_words(), status_words=status_words, disabled_words=disabled_words,
                           grace_hours=GRACE_HOURS, log_size=LOG_SIZE, zone=str(country_zone(creditor.country))), status


@bp.get("/console/<int:creditor_id>/webhooks/<endpoint_id>")
@login_required
def console_webhook(creditor_id: int, endpoint_id: str):
    creditor = console_creditor(creditor_id)
    return _endpoint_page(creditor, _endpoint(creditor, endpoint_id))


@bp.post("/console/<int:creditor_id>/webhooks/<endpoint_id>/types")
@login_required
def console_webhook_types(creditor_id: int, endpoint_id: str):
    creditor = console_creditor(creditor_id)
    endpoint = _endpoint(creditor, endpoint_id)
    types, problem = _chosen_types()
    if problem or types is None:
        values = {"scope": "some", "types": []}
        return _endpoint_page(creditor, endpoint, problems={"types": problem or ""}, values=values, status=422)
    before = list(endpoint.types or ())
    events.set_types(endpoint, types)
    changed = before != endpoint.types
    if changed:
        _audit("console_webhook_types_changed", endpoint, changes={"types": [before, endpoint.types]})
    db.session.commit()
    flash(_("The event types are saved.") if changed else _("Nothing changed."), "done")
    return redirect(url_for(".console_webhook", creditor_id=creditor.id, endpoint_id=endpoint.public_id), code=303)


@bp.post("/console/<int:creditor_id>/webhooks/<endpoint_id>/enabled")
@login_required
def console_webhook_enabled(creditor_id: int, endpoint_id: str):
    """Enable (`enabled=1`) or disable (`enabled=0`) the endpoint."""
    creditor = console_creditor(creditor_id)
    endpoint = _endpoint(creditor, endpoint_id)
    wanted = request.form.get("enabled")
    if wanted not in ("0", "1"):
        abort(400)
    enable = wanted == "1"
    if endpoint.enabled != enable:
        before = endpoint.disabled_reason
        events.set_enabled(endpoint, enable, None if enable else CONSOLE_DISABLED)
        _audit("console_webhook_enabled" if enable else "console_webhook_disabled", endpoint,
               changes={"enabled": [not enable, enable], "disabled_reason": [before, endpoint.disabled_reason]})
        db.session.commit()
    if enable:
        flash(_("The endpoint is enabled. What it missed while disabled can be sent again below."), "done")
    else:
        flash(_("The endpoint is disabled: it gets no new deliveries, and those still waiting will not be sent."),
              "done")
    return redirect(url_for(".console_webhook", creditor_id=creditor.id, endpoint_id=endpoint.public_id), code=303)


@bp.post("/console/<int:creditor_id>/webhooks/<endpoint_id>/rotate")
@login_required
def console_webhook_rotate(creditor_id: int, endpoint_id: str):
    """A new signing secret, shown on this answer only; the previous one signs next to it for the grace."""
    creditor = console_creditor(creditor_id)
    endpoint = _endpoint(creditor, endpoint_id)
    grace = _grace()
    if grace is None:
        return _endpoint_page(creditor, endpoint, status=422, problems={
            "grace_hours": _("Please choose how long the previous secret keeps signing.")})
    secret = events.rotate_secret(endpoint, grace=grace)
    _audit("console_webhook_secret_rotated", endpoint, grace_hours=int(grace.total_seconds() // 3600),
           previous_until=endpoint.previous_until.isoformat() if endpoint.previous_until else None)
    db.session.commit()
    return _endpoint_page(creditor, endpoint, new_secret=secret)


@bp.post("/console/<int:creditor_id>/webhooks/<endpoint_id>/deliveries/<int:delivery_id>/replay")
@login_required
def console_webhook_replay(creditor_id: int, endpoint_id: str, delivery_id: int):
    """Send one delivery again: a dead one goes back in the queue, a delivered one is a new delivery of the
    same event."""
    creditor = console_creditor(creditor_id)
    endpoint = _endpoint(creditor, endpoint_id)
    delivery = events.find_delivery(creditor.id, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        abort(404)
    try:
        again = events.replay_delivery(delivery)
    except Conflict:
        db.session.rollback()
        creditor = console_creditor(creditor_id)
        endpoint = _endpoint(creditor, endpoint_id)
        said = (_("The endpoint is disabled. Please enable it first.") if not endpoint.enabled
                else _("This delivery is still on its way; it can be sent again once it is delivered or has failed."))
        return _endpoint_page(creditor, endpoint, problems={"replay": said}, status=409)
    _audit("console_webhook_replayed", endpoint, delivery=delivery.id, event=delivery.event.public_id,
           new_delivery=again.id if again.id != delivery.id else None)
    db.session.commit()
    flash(_("The delivery is queued to be sent again."), "done")
    return redirect(url_for(".console_webhook", creditor_id=creditor.id, endpoint_id=endpoint.public_id), code=303)


@bp.post("/console/<int:creditor_id>/webhooks/<endpoint_id>/replay")
@login_required
def console_webhook_replay_since(creditor_id: int, endpoint_id: str):
    """Send the endpoint every event since a time (that it wants) again, as new deliveries."""
    creditor = console_creditor(creditor_id)
    endpoint = _endpoint(creditor, endpoint_id)
    since = _since(creditor)
    values = {"since": (request.form.get("since") or "").strip()}
    if since is None:
        return _endpoint_page(creditor, endpoint, values={**_types_values(endpoint), **values}, status=422, problems={
            "since": _("Please enter a date and time in the past, such as 2026-12-06 09:30.")})
    try:
        count = events.replay_since(endpoint, since)
    except (Conflict, InvalidData) as exc:
        db.session.rollback()
        creditor = console_creditor(creditor_id)
        endpoint = _endpoint(creditor, endpoint_id)
        said = (_("The endpoint is disabled. Please enable it first.") if isinstance(exc, Conflict)
                else _("More than %(most)s events since then. Please choose a later time.", most=events.MAX_REPLAY))
        return _endpoint_page(creditor, endpoint, values={**_types_values(endpoint), **values},
                              problems={"since": said}, status=409 if isinstance(exc, Conflict) else 422)
    _audit("console_webhook_replayed_since", endpoint, since=since.isoformat(), deliveries=count)
    db.session.commit()
    flash(ngettext("%(num)s event is queued to be sent again.", "%(num)s events are queued to be sent again.", count)
          if count else _("No event since then for this endpoint."), "done")
    return redirect(url_for(".console_webhook", creditor_id=creditor.id, endpoint_id=endpoint.public_id), code=303)


def _types_values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"scope": "some" if endpoint.types else "all", "types": list(endpoint.types or ())}
