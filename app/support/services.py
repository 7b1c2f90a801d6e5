"""Contact requests and their threads (services add and flush; the caller commits).

Opening a request or writing in it records an invoice event (the bill page, which shows the
thread, is cached by the newest one) and writes the e-mails to the outbox in the same
transaction: a confirmation to the customer and a notification to the creditor's support
address; an agent's reply goes to the customer. A double submit (the same form's
`submission_key`) returns what the first one made."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import date
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.billing.models import Invoice
from app.billing.services import record_event
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.outbox.services import enqueue
from app.support.attachments import Upload, store_attachment
from app.support.models import (
    CALLBACK_WINDOWS, CONTACT_METHODS, TOPICS, RequestStatus, SupportMessage, SupportRequest,
)

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MESSAGE_MAX = 4000
CALLBACK_DAYS = 14
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9]{6,15}$")
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
    if not reference or len(reference) > 16:
        return None
    return db.session.scalar(
        select(SupportRequest).where(SupportRequest.invoice_id == invoice_id, SupportRequest.reference == reference)
    )


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


def _check_message(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise InvalidData({"message": "required"})
    if len(body) > MESSAGE_MAX:
        raise InvalidData({"message": "too_long"})
    return body


def open_request(
    invoice: Invoice, *, topic: str, message: str, contact_method: str, contact_email: str | None,
    contact_phone: str | None, callback_date: date | None, callback_window: str | None, upload: Upload | None,
    locale: str, submission_key: str, attachment_dir: str, today: date,
) -> tuple[SupportRequest, bool]:
    """A new conversation about the bill, with the customer's first message."""
    if not submission_key or len(submission_key) > 64:
        raise InvalidData({"submission": "missing"})
    errors: dict[str, str] = {}
    if topic not in TOPICS:
        errors["topic"] = "choose"
    try:
        body = _check_message(message)
    except InvalidData as exc:
        errors.update(exc.errors)
    contact_email = (contact_email or "").strip() or None
    contact_phone = re.sub(r"[\s\-().]", "", contact_phone or "") or None
    if contact_email and not EMAIL.match(contact_email):
        errors["email"] = "invalid"
    if contact_phone and not PHONE.match(contact_phone):
        errors["phone"] = "invalid"
    if contact_method not in CONTACT_METHODS:
        errors["contact_method"] = "choose"
    elif contact_method == "email" and not (contact_email or invoice.customer.email):
        errors.setdefault("email", "required")
    elif contact_method == "phone":
        if not contact_phone:
            errors.setdefault("phone", "required")
        if callback_date is None or not 0 <= (callback_date - today).days <= CALLBACK_DAYS:
            errors["callback_date"] = "range"
        if callback_window not in CALLBACK_WINDOWS:
            errors["callback_window"] = "choose"
    if errors:
        raise InvalidData(errors)
    phone = contact_method == "phone"

    def find() -> SupportRequest | None:
        return db.session.scalar(select(SupportRequest).where(
            SupportRequest.invoice_id == invoice.id, SupportRequest.submission_key == submission_key))

    def add() -> SupportRequest:
        request = SupportRequest(
            reference=new_reference(), creditor_id=invoice.creditor_id, invoice=invoice, topic=topic,
            status=RequestStatus.OPEN, contact_method=contact_method,
            contact_email=contact_email or invoice.customer.email,
            contact_phone=contact_phone if phone else None, callback_date=callback_date if phone else None,
            callback_window=callback_window if phone else None, locale=locale, submission_key=submission_key,
        )
        attachment = store_attachment(upload, invoice, attachment_dir) if upload else None
        request.messages.append(SupportMessage(author="customer", body=body, attachment=attachment))
        db.session.add(request)
        return request

    request, created = _once(find, add)
    if created:
        record_event(invoice, "support_request_opened", "customer", reference=request.reference, topic=topic)
        _to_customer(request, "received", key=request.reference)
        _to_desk(request, key=request.reference)
        db.session.flush()
    return request, created


def add_customer_message(support_request: SupportRequest, body: str, upload: Upload | None, *,
                         submission_key: str, attachment_dir: str) -> tuple[SupportMessage, bool]:
    """The customer writes again in the thread: it is open again, and the support desk is told."""
    if not submission_key or len(submission_key) > 64:
        raise InvalidData({"submission": "missing"})
    if support_request.status == RequestStatus.CLOSED:
        raise IllegalTransition(f"{support_request.reference} is closed")
    body = _check_message(body)
    invoice = support_request.invoice

    def find() -> SupportMessage | None:
        return db.session.scalar(select(SupportMessage).where(
            SupportMessage.request_id == support_request.id, SupportMessage.submission_key == submission_key))

    def add() -> SupportMessage:
        attachment = store_attachment(upload, invoice, attachment_dir) if upload else None
        message = SupportMessage(request=support_request, author="customer", body=body, attachment=attachment,
                                 submission_key=submission_key)
        db.session.add(message)
        return message

    message, created = _once(find, add)
    if created:
        support_request.status = RequestStatus.OPEN
        record_event(invoice, "support_message", "customer", reference=support_request.reference)
        _to_desk(support_request, key=f"{support_request.reference}:{message.id}", message_id=message.id)
        db.session.flush()
    return message, created


def reply(support_request: SupportRequest, body: str, *, agent_name: str, actor: str) -> SupportMessage:
    """An agent's answer: shown in the thread on the bill page and e-mailed to the customer."""
    if support_request.status == RequestStatus.CLOSED:
        raise IllegalTransition(f"{support_request.reference} is closed")
    body = _check_message(body)
    message = SupportMessage(request=support_request, author="agent", author_name=(agent_name or "")[:100] or None,
                             body=body)
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
                idempotency_key=f"support.{kind}:{key}", creditor_id=request.creditor_id, locale=request.locale)


def _to_desk(request: SupportRequest, *, key: str, **payload) -> None:
    creditor = request.invoice.creditor
    if creditor.support_email:
        enqueue("email", "support.notification", creditor.support_email, {"request_id": request.id, **payload},
                idempotency_key=f"support.notification:{key}", creditor_id=request.creditor_id,
                locale=creditor.default_locale)
