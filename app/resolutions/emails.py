"""The e-mails of disputes, promises, deferrals and plans ("resolution.<kind>" outbox messages).

Rendered by the dispatcher in the message's locale, from the resolution's id, with the shared
notice layout. Customer e-mails carry a fresh link to the bill; the support desk's carry the
customer's own words, quoted as plain text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask_babel import gettext as _

from app.billing.texts import line_words
from app.extensions import db
from app.money import format_percent_1
from app.outbox.base import DeliveryError
from app.outbox.email import Notice, RenderedEmail, notice_email
from app.outbox.models import OutboxMessage
from app.payments.receipts import with_bill_link
from app.resolutions.calendar import event_ics
from app.resolutions.instalments import plan_cost
from app.resolutions.models import Resolution
from app.templating import current_format_locale, money
from app.templating import date_filter as fmt_date

ACTOR = "resolution_email"


def reason_label(reason: str | None) -> str:
    return {
        "not_received": _("I did not receive what I am billed for"),
        "wrong_amount": _("The amount is wrong"),
        "already_paid": _("I have already paid"),
        "contract_cancelled": _("I had cancelled the contract"),
        "other": _("Something else"),
    }.get(reason or "", reason or "")


def render_email(message: OutboxMessage) -> RenderedEmail:
    resolution = db.session.get(Resolution, (message.payload or {}).get("resolution_id") or 0)
    if resolution is None:
        raise DeliveryError("the resolution of this e-mail no longer exists", permanent=True)
    builder = BUILDERS.get(message.kind.split(".", 1)[-1])
    if builder is None:
        raise DeliveryError(f"no e-mail template for {message.kind!r}", permanent=True)
    notice = builder(resolution, message.payload or {})
    if notice.link_label:  # the customer's: a link to the bill only to the address on file
        notice = with_bill_link(notice, resolution.invoice, recipient=message.recipient, actor=ACTOR)
    return notice_email(notice, resolution.invoice.creditor, locale=message.locale)


def _customer(resolution: Resolution, subject: str, heading: str, paragraphs: list[str], *,
              facts: list[tuple[str, str]] | None = None, quote: str | None = None, quote_label: str | None = None,
              attachments: tuple = ()) -> Notice:
    invoice, creditor = resolution.invoice, resolution.invoice.creditor
    facts = [(_("Invoice number"), invoice.number), (_("Your reference"), resolution.reference), *(facts or [])]
    return Notice(
        subject=subject, heading=heading, paragraphs=paragraphs, facts=facts, quote=quote, quote_label=quote_label,
        link_label=_("Open the bill"),
        why=_("You receive this e-mail because of your bill from %(creditor)s.", creditor=creditor.name),
        attachments=attachments, reply_to=creditor.support_email,
    )


def _desk(resolution: Resolution, subject: str, heading: str, paragraphs: list[str],
          facts: list[tuple[str, str]]) -> Notice:
    invoice = resolution.invoice
    customer = invoice.customer
    contact = [value for value in (customer.email, customer.phone) if value]
    return Notice(
        subject=subject, heading=heading, paragraphs=paragraphs,
        facts=[(_("Invoice number"), invoice.number), (_("Customer"), customer.name),
               (_("Customer number"), customer.external_ref),
               *([(_("Contact"), ", ".join(contact))] if contact else []),
               (_("Reference"), resolution.reference), *facts],
        quote=resolution.message, quote_label=_("The customer wrote:") if resolution.message else None,
        why=_("You receive this e-mail as the support address of %(creditor)s.", creditor=invoice.creditor.name),
        reply_to=customer.email,
    )


def _cur(resolution: Resolution) -> str:
    return resolution.invoice.currency


# --- disputes --------------------------------------------------------------------------------------


def _dispute_facts(dispute: Resolution) -> list[tuple[str, str]]:
    invoice = dispute.invoice
    if dispute.line_ids:
        base = invoice.creditor.default_locale  # each line in the e-mail's language where it has one
        chosen = [line_words(line, base) for line in invoice.lines if line.id in set(dispute.line_ids)]
        what = ", ".join(chosen)
    else:
        what = _("The whole bill")
    return [(_("Reason"), reason_label(dispute.reason)), (_("Disputed"), what),
            (_("Amount on hold"), money(dispute.amount or 0, _cur(dispute)))]


def dispute_received(dispute: Resolution, payload: dict) -> Notice:
    creditor = dispute.invoice.creditor
    paragraphs = [
        _("%(creditor)s has received your dispute and will look into it. We send no reminders for this bill "
          "while we do.", creditor=creditor.name),
        _("We will write to you when we have an answer."),
    ]
    if dispute.line_ids:  # the rest can always be paid; the creditor's setting decides only whether we suggest it
        paragraphs.append(_("You can pay the part of the bill you do not dispute on the bill page.")
                          if creditor.dispute_partial_payable else
                          _("You can pay the part of the bill you do not dispute on the bill page now, or wait for "
                            "our answer."))
    return _customer(dispute, _("We have received your dispute"), _("We have received your dispute"), paragraphs,
                     facts=_dispute_facts(dispute), quote=dispute.message, quote_label=_("You wrote:"))


def dispute_notification(dispute: Resolution, payload: dict) -> Notice:
    invoice = dispute.invoice
    facts = _dispute_facts(dispute)
    if dispute.attachment is not None:
        facts.append((_("Attachment"), f"{dispute.attachment.filename} ({dispute.attachment.mime})"))
    return _desk(dispute, _("Dispute %(reference)s on invoice %(number)s", reference=dispute.reference,
                            number=invoice.number),
                 _("A customer disputes a bill"),
                 [_("Reminders and the hand-off to debt collection are paused until the dispute is answered.")], facts)


def dispute_answered(dispute: Resolution, payload: dict) -> Notice:
    invoice = dispute.invoice
    creditor = invoice.creditor
    facts = _dispute_facts(dispute)
    if dispute.status in ("upheld", "partial"):
        facts = [*facts[:2], (_("Left to pay now"), money(max(invoice.balance, 0), invoice.currency))]
    if dispute.status == "upheld" and invoice.is_closed:
        heading = _("We agree with your dispute")
        paragraphs = [_("%(creditor)s agrees with you and has cancelled the bill. You do not need to pay it.",
                        creditor=creditor.name)]
    elif dispute.status == "upheld":
        heading = _("We agree with your dispute")
        paragraphs = [_("%(creditor)s agrees with you and has corrected the bill. You do not need to pay the disputed "
                        "amount.", creditor=creditor.name)]
    elif dispute.status == "partial":
        heading = _("We agree with part of your dispute")
        paragraphs = [_("%(creditor)s agrees with you in part and has corrected the bill. The rest of the bill "
                        "stands; the bill page shows what is left to pay.", creditor=creditor.name)]
    else:
        heading = _("Answer to your dispute")
        paragraphs = [_("%(creditor)s has looked into your dispute and finds the bill correct. Please pay it, or "
                        "choose another option on the bill page.", creditor=creditor.name)]
    if dispute.status in ("upheld", "partial") and invoice.amount_paid > invoice.total and not invoice.is_closed:
        paragraphs.append(_("You have paid %(amount)s more than the bill now asks for. %(creditor)s will pay it back "
                            "to you.", amount=money(invoice.amount_paid - invoice.total, invoice.currency),
                            creditor=creditor.name))
    return _customer(dispute, heading, heading, paragraphs, facts=facts, quote=dispute.answer,
                     quote_label=_("Our answer:"))


# --- promises ----------------------------------------------------------------------------------------


def promise_ics(promise: Resolution) -> bytes:
    invoice = promise.invoice
    creditor = invoice.creditor
    return event_ics(
        uid=f"{promise.reference}@{creditor.slug}.portal",
        day=promise.new_date,
        summary=_("Pay %(amount)s to %(creditor)s", amount=money(promise.amount or invoice.balance, invoice.currency),
                  creditor=creditor.name),
        description=_("Invoice %(number)s. Reference for the payment: %(reference)s.", number=invoice.number,
                      reference=invoice.payment_reference),
    )


def promise_confirmed(promise: Resolution, payload: dict) -> Notice:
    invoice = promise.invoice
    grace_end = promise.new_date + timedelta(days=invoice.creditor.grace_days)
    return _customer(
        promise, _("Your promise to pay by %(date)s", date=fmt_date(promise.new_date)),
        _("Thank you for letting us know"),
        [_("You have promised to pay %(amount)s by %(date)s. We send no reminders until then.",
           amount=money(promise.amount or 0, invoice.currency), date=fmt_date(promise.new_date)),
         _("We will remind you by e-mail the day before. If the payment has not arrived by %(date)s, the usual "
           "reminders resume.", date=fmt_date(grace_end)),
         _("The attached calendar file adds the date to your calendar.")],
        facts=[(_("Promised date"), fmt_date(promise.new_date)),
               (_("Amount"), money(promise.amount or 0, _cur(promise)))],
        attachments=(("promise-to-pay.ics", "text/calendar", promise_ics(promise)),),
    )


def promise_due(promise: Resolution, payload: dict) -> Notice:
    invoice = promise.invoice
    return _customer(
        promise, _("Reminder: you promised to pay by %(date)s", date=fmt_date(promise.new_date)),
        _("Your payment date is near"),
        [_("You promised to pay by %(date)s. What is left to pay: %(amount)s.", date=fmt_date(promise.new_date),
           amount=money(invoice.balance, invoice.currency)),
         _("You can pay in a minute on the bill page.")],
    )


def promise_broken(promise: Resolution, payload: dict) -> Notice:
    invoice = promise.invoice
    return _customer(
        promise, _("We have not received your payment"), _("We have not received your payment"),
        [_("You promised to pay by %(date)s, and %(amount)s is still unpaid. The usual reminders resume.",
           date=fmt_date(promise.new_date), amount=money(invoice.balance, invoice.currency)),
         _("If you cannot pay it all now, the bill page shows what else you can do, or contact us.")],
    )


# --- deferrals ---------------------------------------------------------------------------------------


def _deferral_facts(deferral: Resolution) -> list[tuple[str, str]]:
    facts = [(_("New due date"), fmt_date(deferral.new_date))]
    if deferral.old_date:
        facts.insert(0, (_("Previous due date"), fmt_date(deferral.old_date)))
    if deferral.fee:
        facts.append((_("Fee"), money(deferral.fee, _cur(deferral))))
    return facts


def deferral_granted(deferral: Resolution, payload: dict) -> Notice:
    paragraphs = [_("Your bill is now due on %(date)s. We send no reminders before then.",
                    date=fmt_date(deferral.new_date))]
    if deferral.fee:
        paragraphs.append(_("The fee of %(fee)s has been added to the bill.", fee=money(deferral.fee, _cur(deferral))))
    return _customer(deferral, _("Your new due date: %(date)s", date=fmt_date(deferral.new_date)),
                     _("You have more time to pay"), paragraphs, facts=_deferral_facts(deferral),
                     quote=deferral.answer, quote_label=_("Our answer:") if deferral.answer else None)


def deferral_requested(deferral: Resolution, payload: dict) -> Notice:
    return _customer(deferral, _("We have received your request for more time"),
                     _("We have received your request for more time"),
                     [_("Someone from our team will look at your request and answer you by e-mail. We send no "
                        "reminders for this bill until then.")], facts=_deferral_facts(deferral))


def deferral_request_notification(deferral: Resolution, payload: dict) -> Notice:
    why = {"too_many": _("The customer has already had the most deferrals allowed."),
           "beyond_limit": _("The date asked for is later than the self-service limit.")}.get(deferral.reason or "", "")
    return _desk(deferral, _("Request for more time on invoice %(number)s", number=deferral.invoice.number),
                 _("A customer asks for more time"),
                 [why, _("Reminders and the hand-off are paused until the request is answered.")],
                 _deferral_facts(deferral))


def deferral_declined(deferral: Resolution, payload: dict) -> Notice:
    return _customer(deferral, _("Answer to your request for more time"), _("Answer to your request for more time"),
                     [_("We cannot move the due date this time. If you cannot pay it all now, the bill page shows "
                        "what else you can do.")],
                     quote=deferral.answer, quote_label=_("Our answer:") if deferral.answer else None)


# --- instalment plans ----------------------------------------------------------------------------------


def _schedule_facts(plan: Resolution) -> list[tuple[str, str]]:
    return [(_("Instalment %(n)d, due %(date)s", n=i.seq, date=fmt_date(i.due_date)), money(i.amount, _cur(plan)))
            for i in plan.instalments]


def plan_accepted(plan: Resolution, payload: dict) -> Notice:
    cur = _cur(plan)
    facts = [*_schedule_facts(plan), (_("Total"), money(plan.amount or 0, cur))]
    if plan.fee:
        facts.append((_("Of which the plan fee"), money(plan.fee, cur)))
    if plan.interest:
        facts.append((_("Of which interest"), money(plan.interest, cur)))
    if plan.instalments:
        cost = plan_cost(plan, plan.invoice.creditor.country)
        facts += [(_("Total cost of credit"), money(cost.cost, cur)),
                  (_("Effective annual rate"), format_percent_1(cost.apr, current_format_locale()))]
    return _customer(
        plan, _("Your instalment plan"), _("Your instalment plan is set up"),
        [_("Pay each instalment by its date from the bill page or by bank transfer with the bill's reference. "
           "We send no reminders while the plan runs, and we remind you by e-mail the day before each instalment."),
         _("If an instalment is more than %(days)d days late, the plan ends and the usual reminders resume.",
           days=plan.invoice.creditor.grace_days)],
        facts=facts, quote=plan.answer, quote_label=_("Our answer:") if plan.answer else None,
    )


def _request_facts(plan: Resolution) -> list[tuple[str, str]]:
    return [(_("Instalments asked for"), str(plan.months or "")),
            (_("Left to pay"), money(plan.amount or 0, _cur(plan)))]


def plan_requested(plan: Resolution, payload: dict) -> Notice:
    return _customer(plan, _("We have received your request for an instalment plan"),
                     _("We have received your request for an instalment plan"),
                     [_("Someone from our team will look at your request and answer you by e-mail. We send no "
                        "reminders for this bill until then.")], facts=_request_facts(plan),
                     quote=plan.message, quote_label=_("You wrote:"))


def plan_request_notification(plan: Resolution, payload: dict) -> Notice:
    return _desk(plan, _("Request for an instalment plan on invoice %(number)s", number=plan.invoice.number),
                 _("A customer asks for an instalment plan"),
                 [_("The plan asked for is beyond what the bill page offers."),
                  _("Reminders and the hand-off are paused until the request is answered.")], _request_facts(plan))


def plan_declined(plan: Resolution, payload: dict) -> Notice:
    return _customer(plan, _("Answer to your request for an instalment plan"),
                     _("Answer to your request for an instalment plan"),
                     [_("We cannot offer that plan this time. If you cannot pay it all now, the bill page shows what "
                        "else you can do.")],
                     quote=plan.answer, quote_label=_("Our answer:") if plan.answer else None)


def instalment_due(plan: Resolution, payload: dict) -> Notice:
    invoice = plan.invoice
    instalment = next((i for i in plan.instalments if i.seq == payload.get("seq")), None)
    if instalment is None:
        raise DeliveryError(f"{plan.reference} has no instalment {payload.get('seq')!r}", permanent=True)
    left = payload.get("left", instalment.amount)
    return _customer(
        plan, _("Your next instalment is due on %(date)s", date=fmt_date(instalment.due_date)),
        _("Your next instalment"),
        [_("Please pay %(amount)s by %(date)s.", amount=money(left, invoice.currency),
           date=fmt_date(instalment.due_date)),
         _("You can pay in a minute on the bill page.")],
        facts=_schedule_facts(plan),
    )


def plan_broken(plan: Resolution, payload: dict) -> Notice:
    invoice = plan.invoice
    return _customer(
        plan, _("Your instalment plan has ended"), _("Your instalment plan has ended"),
        [_("An instalment was not paid in time, so the plan has ended. What is left to pay, %(amount)s, is due now, "
           "and the usual reminders resume.", amount=money(invoice.balance, invoice.currency)),
         _("If something has happened, please contact us: we would rather find a solution with you.")],
    )


BUILDERS: dict[str, Callable[[Resolution, dict], Notice]] = {
    "dispute_received": dispute_received,
    "dispute_notification": dispute_notification,
    "dispute_answered": dispute_answered,
    "promise_confirmed": promise_confirmed,
    "promise_due": promise_due,
    "promise_broken": promise_broken,
    "deferral_granted": deferral_granted,
    "deferral_requested": deferral_requested,
    "deferral_request_notification": deferral_request_notification,
    "deferral_declined": deferral_declined,
    "plan_accepted": plan_accepted,
    "instalment_due": instalment_due,
    "plan_broken": plan_broken,
    "plan_requested": plan_requested,
    "plan_request_notification": plan_request_notification,
    "plan_declined": plan_declined,
}
