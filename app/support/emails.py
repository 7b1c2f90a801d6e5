"""The e-mails of contact requests ("support.<kind>" outbox messages), in the shared notice layout.

received: the customer's confirmation with the reference; notification: the creditor's support
desk (the customer's words quoted as plain text; an attachment is named, never attached);
reply: an agent's answer to the customer."""

from __future__ import annotations

from datetime import date, time

from babel.dates import format_date, format_time
from flask_babel import gettext as _

from app.extensions import db
from app.i18n import country_zone
from app.outbox.base import DeliveryError
from app.outbox.email import Notice, RenderedEmail, notice_email
from app.outbox.models import OutboxMessage
from app.payments.receipts import with_bill_link
from app.support.models import SupportMessage, SupportRequest
from app.templating import current_format_locale

ACTOR = "support_email"


def topic_label(topic: str) -> str:
    """The topic in words (the form's choices, the thread, the e-mails)."""
    return {
        "bill_question": _("A question about the bill"),
        "contact_details": _("New contact details"),
        "already_paid": _("I have already paid"),
        "other": _("Something else"),
    }.get(topic, topic)


#: How a clock time is written in a sentence, by language (Babel patterns): "16.00" is the Norwegian
#: Language Council's way, "16:00 Uhr" the German (DIN 5008); English reads "4:00 pm".
TIME_PATTERNS = {"nb": "HH.mm", "de": "HH:mm"}
#: The windows of call backs asked for before they kept their start and end (migration 0019).
STANDARD_WINDOWS = {"morning": (time(8), time(12)), "afternoon": (time(12), time(16)), "evening": (time(16), time(20))}


def window_words(start: time, end: time) -> str:
    """A window of the day in words, in the current language: "between 4:00 and 8:00 pm",
    "zwischen 16:00 und 20:00 Uhr", "mellom kl. 16.00 og 20.00"."""
    locale = current_format_locale()
    pattern = TIME_PATTERNS.get(locale.split("_")[0])
    if pattern is None:  # English: the am/pm once when both are in the same half of the day
        same_half = (start.hour < 12) == (end.hour < 12)
        first = format_time(start, "h:mm" if same_half else "h:mm a", locale=locale).lower()
        last = format_time(end, "h:mm a", locale=locale).lower()
    else:
        first, last = format_time(start, pattern, locale=locale), format_time(end, pattern, locale=locale)
    return _("between %(start)s and %(end)s", start=first, end=last)


def window_label(window: str | None) -> str:
    """A window by its name alone (a call back asked for before windows kept their hours)."""
    span = STANDARD_WINDOWS.get(window or "")
    return window_words(*span) if span else ""


def request_window(request: SupportRequest) -> str:
    """The window of a call back as the customer chose it (its hours where the creditor is), or by its
    name for one asked for before windows kept their hours."""
    if request.callback_start is not None and request.callback_end is not None:
        zone = country_zone(request.invoice.creditor.country)
        start, end = request.callback_start.astimezone(zone), request.callback_end.astimezone(zone)
        return window_words(start.time(), end.time())
    return window_label(request.callback_window)


def callback_words(request: SupportRequest) -> str:
    """The day and window of a call back, in the creditor's time zone: "Monday, December 7, 2026, between
    7:00 am and 12:00 pm"."""
    if request.callback_date is None:
        return ""
    return _("%(day)s, %(window)s", day=day_words(request.callback_date), window=request_window(request))


def day_words(day: date) -> str:
    """A day with its weekday, in the current language: "Monday, December 7, 2026" / "Montag, 7. Dezember 2026"."""
    return format_date(day, "full", locale=current_format_locale())


def contact_label(request: SupportRequest) -> str:
    """How the customer wants to be answered, for the support desk."""
    if request.contact_method == "phone":
        return _("A call to %(phone)s on %(when)s", phone=request.contact_phone, when=callback_words(request))
    return _("E-mail to %(email)s", email=request.contact_email)


def render_email(message: OutboxMessage) -> RenderedEmail:
    """The e-mail of a "support.<kind>" outbox message (run by the dispatcher in the message's locale)."""
    payload = message.payload or {}
    request = db.session.get(SupportRequest, payload.get("request_id") or 0)
    if request is None:
        raise DeliveryError("the contact request of this e-mail no longer exists", permanent=True)
    if payload.get("message_id"):
        written = db.session.get(SupportMessage, payload["message_id"])
    else:
        written = request.messages[0]
    if written is None:
        raise DeliveryError("the message of this e-mail no longer exists", permanent=True)
    kind = message.kind.split(".", 1)[-1]
    builder = {"received": _received, "notification": _notification, "reply": _reply}.get(kind)
    if builder is None:
        raise DeliveryError(f"no e-mail template for {message.kind!r}", permanent=True)
    notice = builder(request, written)
    if notice.link_label:  # the customer's: a link to the bill only to the address on file
        notice = with_bill_link(notice, request.invoice, recipient=message.recipient, actor=ACTOR)
    return notice_email(notice, request.invoice.creditor, locale=message.locale)


def _customer(request: SupportRequest, subject: str, heading: str, paragraphs: list[str], *, quote: str,
              quote_label: str) -> Notice:
    invoice, creditor = request.invoice, request.invoice.creditor
    return Notice(
        subject=subject, heading=heading, paragraphs=paragraphs,
        facts=[(_("Your reference"), request.reference), (_("Invoice number"), invoice.number),
               (_("Topic"), topic_label(request.topic))],
        quote=quote, quote_label=quote_label, link_label=_("Open the bill and the conversation"),
        why=_("You receive this e-mail because you wrote to %(creditor)s about a bill.", creditor=creditor.name),
        reply_to=creditor.support_email,
    )


def _received(request: SupportRequest, written: SupportMessage) -> Notice:
    creditor = request.invoice.creditor
    if request.contact_method == "phone":
        next_step = _("We will call you at %(phone)s on %(when)s.", phone=request.contact_phone,
                      when=callback_words(request))
    else:
        next_step = _("We will answer you by e-mail, usually within two working days.")
    return _customer(
        request, _("We have your message (%(reference)s)", reference=request.reference),
        _("Thank you, we have your message"),
        [_("%(creditor)s has received your message about invoice %(number)s.", creditor=creditor.name,
           number=request.invoice.number), next_step,
         _("Please quote your reference %(reference)s if you contact us again.", reference=request.reference)],
        quote=written.body, quote_label=_("You wrote:"),
    )


def _reply(request: SupportRequest, written: SupportMessage) -> Notice:
    creditor = request.invoice.creditor
    return _customer(
        request, _("Answer from %(creditor)s (%(reference)s)", creditor=creditor.name, reference=request.reference),
        _("We have answered your message"),
        [_("You can also read the answer, and write again, on the bill page.")],
        quote=written.body, quote_label=_("%(name)s wrote:", name=written.author_name or creditor.name),
    )


def _notification(request: SupportRequest, written: SupportMessage) -> Notice:
    invoice = request.invoice
    customer = invoice.customer
    facts = [(_("Case reference"), request.reference), (_("Invoice number"), invoice.number),
             (_("Customer"), customer.name), (_("Customer number"), customer.external_ref),
             (_("Topic"), topic_label(request.topic)),
             (_("Contact"), contact_label(request))]
    if written.attachment is not None:
        facts.append((_("Attachment"), f"{written.attachment.filename} ({written.attachment.mime})"))
    first = written.id == request.messages[0].id
    return Notice(
        subject=(_("New message %(reference)s on invoice %(number)s", reference=request.reference,
                   number=invoice.number)
                 if first else _("The customer wrote again (%(reference)s)", reference=request.reference)),
        heading=_("A customer has written about a bill"),
        paragraphs=[_("Your answer to %(reference)s reaches the customer by e-mail and on the bill page.",
                      reference=request.reference)],
        facts=facts, quote=written.body, quote_label=_("The customer wrote:"),
        why=_("You receive this e-mail as the support address of %(creditor)s.", creditor=invoice.creditor.name),
        reply_to=request.contact_email,
    )
