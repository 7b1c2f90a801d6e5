"""What became of a dunning message after it left: the outbox's news (`outbox.feedback`'s signals) and
the opening of the link it carried, connected by the app factory.

- Progress (queued, sent, delivered: Twilio's status callbacks) moves the `Message` forward, never
  back: callbacks arrive late, twice and out of order. "Opened" is the first opening of the signed
  link issued for that message (no tracking pixel: the customer's own click is the only signal).
- A failure (an SMS undelivered or failed, an e-mail bounced at the relay or by a DSN, a message dead
  in the outbox) calls `services.fall_back`: the next channel of the step, a letter at the last.
  Twilio's error 21610 (the number replied STOP) also stops SMS to that number, as the reply does.
- STOP and START replies (`sms_opt_out`) set or clear `Customer.sms_stopped_at` of every customer
  with that mobile number whom we text from the number that received the reply. The portal texts
  every creditor's customers from one sender (SMS_FROM), and Twilio itself blocks that sender for
  the number after a STOP, so the stop holds for every creditor; a reply to another number changes
  nothing. The run sends no SMS to a stopped customer (`engine.reachable`); letters and e-mail go on.

Each handler adds and flushes in its caller's transaction (the hook's request, the dispatcher's record
of a failure, `flask outbox bounces`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from app.billing.models import Customer
from app.dunning.engine import KIND
from app.dunning.models import Channel, Message, MessageStatus, Notice, NoticeStatus
from app.dunning.services import fall_back
from app.extensions import db
from app.links.models import AccessLink
from app.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

#: Twilio's error for a number that replied STOP to the sender.
OPTED_OUT = "21610"

#: How far along a message is; the failures are final (the message fell back).
RANK = {MessageStatus.QUEUED: 0, MessageStatus.SENT: 1, MessageStatus.DELIVERED: 2, MessageStatus.OPENED: 3}
FINAL = frozenset({MessageStatus.FAILED, MessageStatus.BOUNCED})


def _message_of(outbox_message: OutboxMessage) -> Message | None:
    if outbox_message.kind != KIND:
        return None
    return db.session.scalar(select(Message).where(Message.outbox_message_id == outbox_message.id))


def advance(message: Message, status: MessageStatus, at: datetime) -> bool:
    """Move `message` to `status` if that is further along than where it is; its notices follow
    (delivered, opened). Returns whether it moved."""
    current = MessageStatus(message.status)
    if current in FINAL or RANK[status] <= RANK[current]:
        return False
    message.status, message.status_at = status, at
    notice_status = {MessageStatus.DELIVERED: NoticeStatus.DELIVERED, MessageStatus.OPENED: NoticeStatus.OPENED}
    if status in notice_status:
        db.session.execute(update(Notice).where(
            Notice.message_id == message.id, Notice.status.in_([NoticeStatus.SENT, NoticeStatus.DELIVERED]),
        ).values(status=notice_status[status]).execution_options(synchronize_session="fetch"))
    db.session.flush()
    return True


def on_delivered(outbox_message: OutboxMessage, *, status: str, at: datetime, **_: object) -> None:
    message = _message_of(outbox_message)
    if message is not None:
        advance(message, MessageStatus(status), at)


def on_failed(outbox_message: OutboxMessage, *, reason: str, bounced: bool, code: str | None, at: datetime,
              **_: object) -> None:
    message = _message_of(outbox_message)
    if message is None:
        return
    if message.channel == Channel.SMS and code == OPTED_OUT and message.recipient:
        stop_sms(message.recipient, at)
    fall_back(message, "bounced" if bounced else reason, now=at)


def stop_sms(number: str, at: datetime) -> int:
    """No more SMS to this number (every customer who has it); returns how many were stopped now."""
    result = db.session.execute(update(Customer).where(Customer.phone == number, Customer.sms_stopped_at.is_(None))
                                .values(sms_stopped_at=at).execution_options(synchronize_session="fetch"))
    return int(getattr(result, "rowcount", 0) or 0)


def restart_sms(number: str) -> int:
    """SMS to this number again (the customer replied START); returns how many customers restarted."""
    result = db.session.execute(update(Customer).where(Customer.phone == number, Customer.sms_stopped_at.is_not(None))
                                .values(sms_stopped_at=None).execution_options(synchronize_session="fetch"))
    return int(getattr(result, "rowcount", 0) or 0)


def on_sms_opt_out(number: str, *, stopped: bool, receiver: str, at: datetime, **_: object) -> None:
    ours = current_app.config.get("SMS_FROM") or ""
    if ours and receiver and receiver != ours:
        log.info("an SMS keyword reply to a number that is not SMS_FROM was ignored")
        return
    changed = stop_sms(number, at) if stopped else restart_sms(number)
    log.info("SMS %s for %s customer(s)", "stopped" if stopped else "restarted", changed)


def on_link_opened(link: AccessLink, *, at: datetime, **_: object) -> None:
    message = db.session.scalar(select(Message).where(Message.link_id == link.id))
    if message is not None:
        advance(message, MessageStatus.OPENED, at)
