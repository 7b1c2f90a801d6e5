"""Creditor API v1: invoices in, links out, status; customers' contact points and preferences, how
the portal reminds an invoice or a customer, and the reminders' funnel (`/analytics/funnel`). Bearer key
per creditor; JSON only.

Each view commits once on success; every error answer rolls back (app/apikit/errors.py).
Every lookup is scoped to the calling creditor through app/api/access.py.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, current_app, g, request, url_for

from app.analytics import funnel as funnels
from app.analytics.rollup import watermark as rollup_watermark
from app.api.access import (
    authenticate,
    block_or_404,
    current_creditor,
    current_livemode,
    customer_or_404,
    invoice_or_404,
)
from app.api.openapi import openapi_document, remember_url_prefix
from app.api.schemas import (
    BlockIn,
    CancelIn,
    ContactIn,
    CreditNoteIn,
    CustomerDunningIn,
    InvoiceDunningIn,
    LinkIn,
    ReminderIn,
    TagsIn,
)
from app.api.serializers import (
    DunningState,
    block_json,
    contact_json,
    credit_note_json,
    dunning_json,
    funnel_json,
    invoice_json,
    invoice_summary_json,
    link_json,
    reminder_json,
)
from app.apikit.errors import ApiError, register_error_handlers
from app.apikit.reading import parse_body, read_json
from app.billing import listing
from app.billing import services as billing
from app.billing.corrections import credit_by_positions, credit_notes
from app.billing.models import Invoice
from app.content import services as content
from app.core.dates import local_today
from app.debt_collection.services import plan_hand_off_after, portal_runs_dunning
from app.dunning import options
from app.dunning.engine import STOPPED
from app.dunning.models import Plan
from app.dunning.outlook import has_open_question, next_step
from app.dunning.services import hand_off_not_before
from app.errors import InvalidData
from app.events import feed
from app.events.deliveries import event_json
from app.extensions import db
from app.i18n import country_zone
from app.links import services as links
from app.models import utcnow
from app.resolutions.pause import dunning as pause_rule
from app.resolutions.services import dunning_for

bp = Blueprint("api", __name__)
bp.record_once(remember_url_prefix)
register_error_handlers(bp)

ACTOR = "api"
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})


@bp.before_request
def _authenticate():
    """No API answer is cached; every route but the OpenAPI document needs a key."""
    g.no_store = True
    if request.endpoint not in PUBLIC_ENDPOINTS:
        authenticate()


def _today(invoice: Invoice) -> date:
    return local_today(invoice.creditor.country, utcnow())


def dunning_state(invoice: Invoice, today: date, *, made_now: bool = False) -> DunningState:
    """Whether reminders and the hand-off may go ahead today, and the portal's plan and next step.

    Neither before the due date has passed (a nudge before it is the plan's, not a reminder), nor
    while the pause rule holds them or a question of the customer waits for an answer; the hand-off
    also waits for the plan's collection warning and its deadline where the portal reminds the bill.
    `made_now`: the invoice was made by this request, so nothing is read of what it cannot have yet (a
    resolution, a question, a notice): the same rules, decided on none of them."""
    pause = pause_rule(invoice, today, ()) if made_now else dunning_for(invoice, today)
    question = not made_now and invoice.status in billing.OWING and has_open_question(invoice.id)
    not_due = today <= invoice.due_date
    if not pause.may_remind:
        paused_by, until = pause.reason, pause.until
    elif question:
        paused_by, until = "open_question", None
    elif not_due:
        paused_by, until = "not_due", invoice.due_date
    else:
        paused_by, until = None, None
    not_before = None if made_now else hand_off_not_before(invoice.id)
    waiting = plan_hand_off_after(invoice, today, not_before) if portal_runs_dunning(invoice) else None
    plan = db.session.get(Plan, invoice.dunning_plan_id) if invoice.dunning_plan_id else None
    return DunningState(
        may_remind=pause.may_remind and not question and not not_due,
        may_hand_off=pause.may_hand_off and not question and not not_due and waiting is None,
        paused_by=paused_by, paused_until=until, plan=plan,
        hand_off_not_before=not_before,
        excluded=invoice.dunning_excluded or invoice.customer.dunning_excluded,
        next_step=next_step(invoice, today) if paused_by not in STOPPED else None)


def _invoice_body(invoice: Invoice, *, made_now: bool = False) -> dict:
    """The invoice as the API shows it. `made_now`: made by this request, so it has no resolution,
    question or notice to read (`dunning_state`)."""
    return invoice_json(invoice, billing.timeline(invoice), dunning_state(invoice, _today(invoice), made_now=made_now))


def _limit(default: int, most: int) -> int:
    """The `limit` query parameter: 1 to `most`, `default` when absent."""
    value = request.args.get("limit")
    if value is None or value == "":
        return default
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise InvalidData({"limit": f"a whole number from 1 to {most}"})
    return int(value)


@bp.get("/invoices")
def list_invoices():
    """Your invoices, oldest first, filtered; a page at a time (`after` = the last answer's next_cursor)."""
    args = request.args
    errors: dict[str, str] = {}
    due_from, due_to, since = (_date_arg(args, "due_from", errors), _date_arg(args, "due_to", errors),
                               _time_arg(args, "updated_since", errors))
    if errors:
        raise InvalidData(errors)
    statuses = tuple(s for value in args.getlist("status") for s in value.split(",") if s)
    found = listing.InvoiceFilter(statuses=statuses, due_from=due_from, due_to=due_to,
                                  customer_ref=args.get("customer"), updated_since=since)
    invoices, next_cursor = listing.page(current_creditor().id, found, after=args.get("after"),
                                         livemode=current_livemode(),
                                         limit=_limit(listing.DEFAULT_LIMIT, listing.MAX_LIMIT))
    body = {"data": [invoice_summary_json(invoice) for invoice in invoices], "next_cursor": next_cursor}
    db.session.commit()  # keeps the key's last use
    return body


@bp.get("/events")
def list_events():
    """Your events, oldest first, each once: ask again with `after` = the last answer's next_cursor."""
    events, next_cursor = feed.page(current_creditor().id, after=request.args.get("after"),
                                    livemode=current_livemode(), limit=_limit(feed.DEFAULT_LIMIT, feed.MAX_LIMIT))
    body = {"data": [event_json(event) for event in events], "next_cursor": next_cursor}
    db.session.commit()  # keeps the key's last use
    return body


API_PROBLEMS = {"date": "a date (YYYY-MM-DD)", "range": "a period ending after it begins, at most 156 weeks",
                "dimension": f"one of {', '.join(funnels.DIMENSIONS)}", "number": "a whole number",
                "text": "at most 40 characters"}


@bp.get("/analytics/funnel")
def analytics_funnel():
    """Your reminders' funnel and your bills' outcomes, as the back office shows them (live bills only)."""
    if not current_livemode():
        raise ApiError(403, "live_only", "Analytics count live bills only: ask with a live key.")
    creditor = current_creditor()
    today = local_today(creditor.country, utcnow())
    try:
        query = funnels.parse_query(request.args, creditor.id, today)
    except InvalidData as exc:
        raise InvalidData({name: API_PROBLEMS[code] for name, code in exc.errors.items()}) from None
    figures = funnels.funnel(query, country_zone(creditor.country), today)
    body = funnel_json(figures, window_days=current_app.config["ANALYTICS_ATTRIBUTION_DAYS"],
                       computed_at=rollup_watermark())
    db.session.commit()  # keeps the key's last use
    return body


def _date_arg(args, name: str, errors: dict[str, str]) -> date | None:
    value = args.get(name)
    if not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    errors[name] = "a date (YYYY-MM-DD)"
    return None


def _time_arg(args, name: str, errors: dict[str, str]) -> datetime | None:
    value = args.get(name)
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not 1 <= when.year <= 9998:
        errors[name] = "a date and time with its offset (2026-12-06T08:00:00Z)"
        return None
    return when


@bp.post("/invoices")
def create_invoice():
    """Create an invoice with its customer and lines; the same request again returns it unchanged.
    `dunning_plan` (a plan's name) and `dunning_excluded` set how the portal reminds it."""
    payload = read_json()
    invoice, created = billing.import_invoice(current_creditor(), payload, actor=ACTOR,  # and its dunning options
                                              livemode=current_livemode())
    body = _invoice_body(invoice, made_now=created)
    db.session.commit()  # the number from the body: the commit expired the invoice
    if not created:
        return body, 200
    return body, 201, {"Location": url_for(".get_invoice", number=body["number"])}


@bp.get("/invoices/<path:number>")
def get_invoice(number: str):
    """An invoice with its customer, lines, amounts and timeline."""
    body = _invoice_body(invoice_or_404(number))
    db.session.commit()  # keeps the key's last use
    return body


@bp.post("/invoices/<path:number>/links")
def issue_link(number: str):
    """Issue a signed link to the invoice's bill page."""
    invoice = invoice_or_404(number)
    data = parse_body(LinkIn, read_json())
    ttl_days = data.ttl_days if data.ttl_days is not None else current_app.config["LINK_DEFAULT_TTL_DAYS"]
    issued = links.issue_link(
        invoice, channel=data.channel, ttl_days=ttl_days, signer=links.get_signer(),
        base_url=current_app.config["PORTAL_BASE_URL"], actor=ACTOR,
    )
    body = link_json(issued)
    db.session.commit()
    return body, 201


@bp.post("/invoices/<path:number>/links/revoke")
def revoke_links(number: str):
    """Revoke every link of the invoice that is still live."""
    revoked = links.revoke_links(invoice_or_404(number), actor=ACTOR)
    db.session.commit()
    return {"revoked": revoked}


@bp.put("/invoices/<path:number>/dunning")
def set_invoice_dunning(number: str):
    """Remind the invoice by one of your plans, or exclude it from the portal's reminders (or include it again)."""
    invoice = invoice_or_404(number, for_update=True)
    data = parse_body(InvoiceDunningIn, read_json())
    options.set_invoice_dunning(invoice, plan=data.plan, version=data.version, excluded=data.excluded, actor=ACTOR,
                                today=_today(invoice))
    body = dunning_json(dunning_state(invoice, _today(invoice)))
    db.session.commit()
    return body


@bp.get("/customers/<path:external_ref>/contact")
def get_contact(external_ref: str):
    """A customer's contact points and preferences for reminders."""
    body = contact_json(customer_or_404(external_ref))
    db.session.commit()  # keeps the key's last use
    return body


@bp.put("/customers/<path:external_ref>/contact")
def update_contact(external_ref: str):
    """Change a customer's contact points and preferences: the fields given (null clears one)."""
    customer = customer_or_404(external_ref)
    data = parse_body(ContactIn, read_json())
    given = data.model_dump(include=data.model_fields_set)
    if data.consents is not None:  # the consents given, the others unchanged
        given["consents"] = data.consents.model_dump(include=data.consents.model_fields_set)
    options.update_contact(customer, given)
    body = contact_json(customer)
    db.session.commit()
    return body


@bp.put("/customers/<path:external_ref>/dunning")
def set_customer_dunning(external_ref: str):
    """Exclude every bill of a customer from the portal's reminders, or include them again."""
    customer = customer_or_404(external_ref)
    data = parse_body(CustomerDunningIn, read_json())
    today = local_today(current_creditor().country, utcnow())
    changed = options.set_customer_dunning(customer, excluded=data.excluded, actor=ACTOR, today=today)
    body = {"external_ref": customer.external_ref, "excluded": customer.dunning_excluded, "invoices": changed}
    db.session.commit()
    return body


@bp.post("/invoices/<path:number>/reminders")
def record_reminder(number: str):
    """Record a reminder your dunning system sent (the final one starts the count to debt collection;
    a final one sent on or before the due date is refused)."""
    invoice = invoice_or_404(number)
    data = parse_body(ReminderIn, read_json())
    reminder, created = billing.record_reminder(invoice, channel=data.channel, sent_at=data.sent_at, final=data.final,
                                                actor=ACTOR, external_ref=data.id)
    body = reminder_json(reminder)
    db.session.commit()
    return body, 201 if created else 200


@bp.post("/invoices/<path:number>/credit-notes")
def issue_credit_note(number: str):
    """Issue a credit note on the invoice: some lines (by position) or everything still open to a
    credit. The invoice stays as issued; what it asks for goes down, and what was paid beyond it is
    owed back to the customer."""
    invoice = invoice_or_404(number, for_update=True)
    data = parse_body(CreditNoteIn, read_json())
    positions = [(line.position, line.amount) for line in data.lines] if data.lines is not None else None
    note, created = credit_by_positions(invoice, positions, reason=data.reason, actor=ACTOR, external_ref=data.id)
    body = credit_note_json(note, invoice)
    db.session.commit()
    return body, 201 if created else 200


@bp.get("/invoices/<path:number>/credit-notes")
def list_credit_notes(number: str):
    """The invoice's credit notes, oldest first."""
    invoice = invoice_or_404(number)
    return {"credit_notes": [credit_note_json(note, invoice) for note in credit_notes(invoice.id)]}


@bp.post("/invoices/<path:number>/cancel")
def cancel_invoice(number: str):
    """Cancel an invoice that has no payments."""
    invoice = invoice_or_404(number, for_update=True)
    data = parse_body(CancelIn, read_json(optional=True))
    billing.cancel_invoice(invoice, actor=ACTOR, reason=data.reason)
    body = _invoice_body(invoice)
    db.session.commit()
    return body


def _block_given(data: BlockIn) -> dict:
    """The services' terms for a block from the API's body."""
    given = data.model_dump(exclude={"targeting", "texts"})
    given.update(data.targeting.model_dump())
    given["texts"] = {locale: text.model_dump() for locale, text in data.texts.items()}
    return given


@bp.get("/content/blocks")
def list_blocks():
    """Your content blocks in the key's mode, running first."""
    body = {"data": [block_json(b) for b in content.blocks_of(current_creditor().id, livemode=current_livemode())]}
    db.session.commit()  # keeps the key's last use
    return body


@bp.post("/content/blocks")
def create_block():
    """A new content block; made with a test key, it shows on test bills only."""
    data = parse_body(BlockIn, read_json())
    block = content.create_block(current_creditor(), _block_given(data), livemode=current_livemode())
    body = block_json(block)
    db.session.commit()
    return body, 201, {"Location": url_for("api.get_block", block_id=block.public_id)}


@bp.get("/content/blocks/<block_id>")
def get_block(block_id: str):
    body = block_json(block_or_404(block_id))
    db.session.commit()
    return body


@bp.put("/content/blocks/<block_id>")
def update_block(block_id: str):
    """Replace a block's settings and texts (its first variant's)."""
    block = block_or_404(block_id)
    data = parse_body(BlockIn, read_json())
    content.update_block(current_creditor(), block, _block_given(data))
    body = block_json(block)
    db.session.commit()
    return body


@bp.post("/content/blocks/<block_id>/stop")
def stop_block(block_id: str):
    """Stop a block: shown nowhere from the next request (its leads and results stay)."""
    block = block_or_404(block_id)
    content.set_stopped(current_creditor(), block, True, utcnow())
    body = block_json(block)
    db.session.commit()
    return body


@bp.put("/customers/<path:external_ref>/tags")
def set_tags(external_ref: str):
    """The tags content blocks may target for this customer, replacing those before."""
    customer = customer_or_404(external_ref)
    data = parse_body(TagsIn, read_json())
    tags = content.set_tags(customer, data.tags)
    db.session.commit()
    return {"external_ref": customer.external_ref, "tags": tags}


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API (no key needed)."""
    return openapi_document()
