"""Contact requests and their threads (services add and flush; the caller commits).

Opening a request or writing in it records an invoice event (the bill page, which shows the
thread, is cached by the newest one) and writes the e-mails to the outbox in the same
transaction: a confirmation to the customer and a notification to the creditor's support
address; an agent's reply goes to the customer. A double submit (the same form's
`submission_key`) returns what the first one made, also when both arrive at once: the unique
key decides, inside a savepoint.

Problems are reported as InvalidData({field: code}), every field's at once; the pages put them
into words (support.forms)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime, time
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.billing.models import Invoice
from app.billing.services import record_event
from app.core.hours import CALLBACK_DAYS, Window, find_window, hours_of, local_moment, open_windows
from app.core.validation import PHONE, clean_email, clean_phone, is_email
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.i18n import country_zone
from app.models import utcnow
from app.outbox.services import enqueue
from app.support.attachments import Upload, store_attachment
from app.support.models import (
    CALLBACK_WINDOWS,
    CONTACT_METHODS,
    TOPICS,
    RequestStatus,
    SupportMessage,
    SupportRequest,
)

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out on the phone
MESSAGE_MAX = 4000
SUBMISSION_KEY_MAX = 64
T = TypeVar("T")


def new_reference() -> str:
    return "S-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _i in range(8))


def threads_for(invoice_id: int) -> list[SupportRequest]:
    """The invoice's conversations, oldest first, with their messages and attachments."""
    return list(db.session.scalars(
        select(SupportRequest)
        .options(selectinload(SupportRequest.messages).selectinload(SupportMessage.attachment))
        .where(SupportRequest.invoice_id == invoice_id)
        .order_by(SupportRequest.id)
    ))


def find_request(invoice_id: int, reference: str) -> SupportRequest | None:
    """The conversation with this reference, if it is about this invoice."""
    if not reference or len(reference) > 16:
        return None
    return db.session.scalar(
        select(SupportRequest).where(SupportRequest.invoice_id == invoice_id, SupportRequest.reference == reference)
    )


def message_problems(body: str | None) -> dict[str, str]:
    """What is wrong with a message's text (empty when nothing is)."""
    body = (body or "").strip()
    if not body:
        return {"message": "required"}
    if len(body) > MESSAGE_MAX:
        return {"message": "too_long"}
    return {}


def callback_clock(invoice: Invoice, today: date | None, now: datetime | None) -> datetime:
    """The moment call-back windows are checked against: `now`; else the start of `today` (the
    creditor's date) when only that is given (the CLI, tests); else the clock."""
    if now is not None:
        return now
    if today is not None:
        return local_moment(today, time(0), country_zone(invoice.creditor.country))
    return utcnow()


def callback_windows(invoice: Invoice, now: datetime) -> list[Window]:
    """The call-back windows a customer of this bill may choose at `now` (core.hours)."""
    creditor = invoice.creditor
    return open_windows(hours_of(creditor.callback_hours), creditor.country, now)


def request_problems(
    invoice: Invoice, *, topic: str | None, message: str | None, contact_method: str | None,
    contact_email: str | None, contact_phone: str | None, callback_date: date | None, callback_window: str | None,
    today: date | None = None, now: datetime | None = None,
) -> dict[str, str]:
    """What is wrong with a new request about `invoice`, field by field (empty when nothing is).

    An answer by e-mail needs an address, typed or on file; a call back needs a number and one of
    the windows the creditor's call-back hours leave open (`callback_windows`: not begun yet, from
    today to CALLBACK_DAYS ahead, in the creditor's time zone). An address typed with a call back
    is checked too: the confirmation goes there."""
    problems: dict[str, str] = {}
    if topic not in TOPICS:
        problems["topic"] = "choose"
    problems.update(message_problems(message))
    email, phone = clean_email(contact_email), clean_phone(contact_phone)
    if email and not is_email(email):
        problems["email"] = "invalid"
    if contact_method not in CONTACT_METHODS:
        problems["contact_method"] = "choose"
    elif contact_method == "email" and not (email or invoice.customer.email):
        problems["email"] = "required"
    elif contact_method == "phone":
        if not phone:
            problems["phone"] = "required"
        elif not PHONE.match(phone):
            problems["phone"] = "invalid"
        clock = callback_clock(invoice, today, now)
        first = clock.astimezone(country_zone(invoice.creditor.country)).date()
        if callback_date is None or not 0 <= (callback_date - first).days <= CALLBACK_DAYS:
            problems["callback_date"] = "range"
        elif callback_window not in CALLBACK_WINDOWS:
            problems["callback_window"] = "choose"
        elif find_window(callback_windows(invoice, clock), callback_date, callback_window) is None:
            problems["callback_window"] = "closed"
    return problems


def _check_submission_key(submission_key: str | None) -> None:
    if not submission_key or len(submission_key) > SUBMISSION_KEY_MAX:
        raise InvalidData({"submission": "missing"})


def _once(find: Callable[[], T | None], add: Callable[[], T]) -> tuple[T, bool]:
    """`add()` unless `find()` finds what a first submit made; a concurrent one loses to the unique key."""
    existing = find()
    if existing is not None:
        return existing, False
    try:
        with db.session.begin_nested():
            made = add()
            db.session.flush()
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing, False
    return made, True


def open_request(
    invoice: Invoice, *, topic: str, message: str, contact_method: str, contact_email: str | None,
    contact_phone: str | None, callback_date: date | None, callback_window: str | None, upload: Upload | None,
    locale: str, submission_key: str, attachment_dir: str, today: date | None = None, now: datetime | None = None,
) -> tuple[SupportRequest, bool]:
    """A new conversation about the bill with the customer's first message: (request, created).

    `today` is the creditor's date and `now` the moment (by default: now, where the creditor is); a
    call back keeps the window's start and end, so that agents see the hours the customer chose."""
    _check_submission_key(submission_key)
    now = callback_clock(invoice, today, now)
    problems = request_problems(
        invoice, topic=topic, message=message, contact_method=contact_method, contact_email=contact_email,
        contact_phone=contact_phone, callback_date=callback_date, callback_window=callback_window, now=now,
    )
    if problems:
        raise InvalidData(problems)
    by_phone = contact_method == "phone"
    window = find_window(callback_windows(invoice, now), callback_date, callback_window) if by_phone else None
    start, end = window.moments(country_zone(invoice.creditor.country)) if window else (None, None)

    def find() -> SupportRequest | None:
        return db.session.scalar(select(SupportRequest).where(
            SupportRequest.invoice_id == invoice.id, SupportRequest.submission_key == submission_key))

    def add() -> SupportRequest:
        request = SupportRequest(
            reference=new_reference(), creditor_id=invoice.creditor_id, invoice=invoice, topic=topic,
            status=RequestStatus.OPEN, contact_method=contact_method,
            contact_email=clean_email(contact_email) or invoice.customer.email,
            contact_phone=clean_phone(contact_phone) if by_phone else None,
            callback_date=callback_date if by_phone else None, callback_window=callback_window if by_phone else None,
            callback_start=start, callback_end=end, locale=locale, submission_key=submission_key,
        )
        request.messages.append(SupportMessage(author="customer", body=message.strip()))
        db.session.add(request)
        return request

    request, created = _once(find, add)
    if created:
        if upload is not None:  # written once the request is ours: a losing double submit leaves no file
            request.messages[0].attachment = store_attachment(upload, invoice, attachment_dir)
        record_event(invoice, "support_request_opened", "customer", reference=request.reference, topic=topic)
        _to_customer(request, "received", key=request.reference)
        _to_desk(request, key=request.reference)
        db.session.flush()
    return request, created


def add_customer_message(
    support_request: SupportRequest, body: str, upload: Upload | None, submission_key: str, attachment_dir: str,
) -> tuple[SupportMessage, bool]:
    """The customer writes again in the thread: it is open again, and the support desk is told."""
    _check_submission_key(submission_key)
    if support_request.status == RequestStatus.CLOSED:
        raise IllegalTransition(f"{support_request.reference} is closed")
    problems = message_problems(body)
    if problems:
        raise InvalidData(problems)
    invoice = support_request.invoice

    def find() -> SupportMessage | None:
        return db.session.scalar(select(SupportMessage).where(
            SupportMessage.request_id == support_request.id, SupportMessage.submission_key == submission_key))

    def add() -> SupportMessage:
        message = SupportMessage(request=support_request, author="customer", body=body.strip(),
                                 submission_key=submission_key)
        db.session.add(message)
        return message

    message, created = _once(find, add)
    if created:
        if upload is not None:
            message.attachment = store_attachment(upload, invoice, attachment_dir)
        support_request.status = RequestStatus.OPEN
        record_event(invoice, "support_message", "customer", reference=support_request.reference)
        _to_desk(support_request, key=f"{support_request.reference}:{message.id}", message_id=message.id)
        db.session.flush()
    return message, created


def reply(support_request: SupportRequest, body: str, *, agent_name: str, actor: str) -> SupportMessage:
    """An agent's answer: shown in the thread on the bill page and e-mailed to the customer."""
    if support_request.status == RequestStatus.CLOSED:
        raise IllegalTransition(f"{support_request.reference} is closed")
    problems = message_problems(body)
    if problems:
        raise InvalidData(problems)
    message = SupportMessage(request=support_request, author="agent", author_name=(agent_name or "")[:100] or None,
                             body=body.strip())
    db.session.add(message)
    support_request.status = RequestStatus.ANSWERED
    db.session.flush()
    record_event(support_request.invoice, "support_reply", actor, reference=support_request.reference)
    _to_customer(support_request, "reply", key=f"{support_request.reference}:{message.id}", message_id=message.id)
    db.session.flush()
    return message


def _to_customer(request: SupportRequest, kind: str, *, key: str, **payload) -> None:
    recipient = request.contact_email or request.invoice.customer.email
    if recipient:
        enqueue("email", f"support.{kind}", recipient, {"request_id": request.id, **payload},
                idempotency_key=f"support.{kind}:{key}", creditor_id=request.creditor_id, locale=request.locale,
                livemode=request.invoice.livemode)


def _to_desk(request: SupportRequest, *, key: str, **payload) -> None:
    creditor = request.invoice.creditor
    if creditor.support_email:
        enqueue("email", "support.notification", creditor.support_email, {"request_id": request.id, **payload},
                idempotency_key=f"support.notification:{key}", creditor_id=request.creditor_id,
                locale=creditor.default_locale)


def close_request(support_request: SupportRequest, *, actor: str) -> None:
    """An agent closes the conversation (resolved). The customer sees it closed on the bill page
    and starts a new one to write about something else."""
    if support_request.status == RequestStatus.CLOSED:
        raise IllegalTransition(f"{support_request.reference} is closed already")
    support_request.status = RequestStatus.CLOSED
    record_event(support_request.invoice, "support_request_closed", actor, reference=support_request.reference)
    db.session.flush()


def reopen_request(support_request: SupportRequest, *, actor: str) -> None:
    """An agent opens a closed conversation again: it waits for our answer, and the customer may write."""
    if support_request.status != RequestStatus.CLOSED:
        raise IllegalTransition(f"{support_request.reference} is not closed")
    support_request.status = RequestStatus.OPEN
    record_event(support_request.invoice, "support_request_reopened", actor, reference=support_request.reference)
    db.session.flush()
