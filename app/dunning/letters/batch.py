"""The print run: the letters due on a day, each printed with a fresh short-code link, marked printed;
a batch's files made again from what was stored; an agent's "print again"; the latest print again.

A letter is due on day D when its message was decided (or an agent asked for it to be printed again)
before the end of D where its creditor is. Printing it:

- checks its bills again, as an e-mail is checked at delivery: a bill settled, paused or asked about
  since is left out (its notice becomes `paid_before`); with none left the letter is withdrawn (not
  printed; its message failed, "settled before it went out");
- counts each deadline again from the letter's date (a letter is printed a day or more after it was
  decided; Norway's inkassovarsel must give 14 days from when it is sent): a notice's deadline only
  moves later, and the bill's next step waits for it;
- revokes the link of the letter's earlier print, if any (a letter printed again was lost or did not
  arrive: the lost copy must not open the bill), and issues a new one with a short code for the
  oldest bill (`links.codes`);
- snapshots what the letter says (`document.facts_for`), prints it (`document.render_letter`) and
  records the print (`LetterPrint`: batch, part, pages, SHA-256, file name) and the letter's latest.

Runs of the same day after the first make the batch's next part (its own manifest); a run with
nothing due prints nothing. On PostgreSQL one run at a time (a transaction-level advisory lock), so
two runs never make the same part; on SQLite the write lock does the same.

Adds and flushes; the command commits (once, after every file is written).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select, text

from app.billing.models import Customer, Invoice
from app.billing.services import record_event
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.dunning.engine import postal_address
from app.dunning.letters.document import LetterLink, facts_for, kept_text, logo_of, render_letter
from app.dunning.letters.models import LetterPrint
from app.dunning.models import Letter, LetterStatus, Message, MessageStatus, Notice, NoticeStatus, Step
from app.errors import Conflict
from app.extensions import db
from app.i18n import country_zone
from app.links.codes import code_link, issue_code_link, revoke_link
from app.links.models import AccessLink
from app.models import utcnow
from app.resolutions.services import dunning_for
from app.support.models import RequestStatus, SupportRequest

ACTOR = "letters"
LOCK_KEY = 0x6C65747465727321  # "letters!": one print run at a time (PostgreSQL advisory lock)


@dataclass
class Printed:
    print: LetterPrint
    pdf: bytes


@dataclass
class Withdrawn:
    letter: Letter


# --- which letters ----------------------------------------------------------------------------------------


def _end_of(on: date, country: str) -> datetime:
    """The first moment after day `on` where the creditor is."""
    return datetime.combine(on + timedelta(days=1), time()).replace(tzinfo=country_zone(country))


def due(on: date, creditor_id: int | None = None) -> list[Letter]:
    """The letters to print in the batch of day `on` (of one creditor, or of all), oldest first."""
    query = select(Letter.creditor_id, Creditor.country).join(Creditor, Creditor.id == Letter.creditor_id) \
        .where(Letter.status == LetterStatus.PENDING).distinct()
    if creditor_id is not None:
        query = query.where(Letter.creditor_id == creditor_id)
    found: list[Letter] = []
    for cid, country in sorted(db.session.execute(query).all()):
        ready = func.coalesce(Letter.reprint_requested_at, Message.created_at)
        found += db.session.scalars(
            select(Letter).join(Message, Message.id == Letter.message_id)
            .where(Letter.creditor_id == cid, Letter.status == LetterStatus.PENDING, ready < _end_of(on, country))
            .order_by(Letter.id).with_for_update(of=Letter))
    return found


def next_part(on: date) -> int:
    return (db.session.scalar(select(func.max(LetterPrint.part)).where(LetterPrint.batch == on)) or 0) + 1


def batch_prints(on: date, creditor_id: int | None = None) -> list[LetterPrint]:
    """The prints of the batch of day `on`, by part, in the order they were made."""
    query = select(LetterPrint).where(LetterPrint.batch == on).order_by(LetterPrint.part, LetterPrint.id)
    if creditor_id is not None:
        query = query.where(LetterPrint.creditor_id == creditor_id)
    return list(db.session.scalars(query))


def take_lock() -> None:
    """One print run at a time: two runs of a day never make the same part (PostgreSQL; SQLite's
    transactions outside requests take the write lock at their start anyway)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


# --- printing one ---------------------------------------------------------------------------------------------


def _still_due(message: Message, on: date) -> tuple[list[tuple[Notice, Invoice]], list[Notice]]:
    """The message's notices whose bills are still to remind (oldest bill first), and the others."""
    pairs: list[tuple[Notice, Invoice]] = [(row[0], row[1]) for row in db.session.execute(
        select(Notice, Invoice).join(Invoice, Invoice.id == Notice.invoice_id)
        .where(Notice.message_id == message.id).order_by(Invoice.due_date, Invoice.id))]
    asked = set(db.session.scalars(select(SupportRequest.invoice_id).where(
        SupportRequest.invoice_id.in_([invoice.id for _notice, invoice in pairs]),
        SupportRequest.status == RequestStatus.OPEN))) if pairs else set()
    left: list[tuple[Notice, Invoice]] = []
    gone: list[Notice] = []
    for notice, invoice in pairs:
        if notice.status == NoticeStatus.PAID_BEFORE or invoice.id in asked \
                or not dunning_for(invoice, on).may_remind:
            gone.append(notice)
        else:
            left.append((notice, invoice))
    return left, gone


def _withdraw(letter: Letter, message: Message, gone: list[Notice], now: datetime) -> Withdrawn:
    letter.status = LetterStatus.WITHDRAWN
    message.status, message.failure, message.status_at = MessageStatus.FAILED, "settled before it went out", now
    for notice in gone:
        notice.status = NoticeStatus.PAID_BEFORE
    db.session.flush()
    return Withdrawn(letter)


def _count_deadlines_from(on: date, notices: list[tuple[Notice, Invoice]]) -> None:
    """Each notice's deadline counted from the letter's date (never earlier than it was); the bill's next
    step waits until it has passed, as after a fall-back."""
    steps = {step.id: step for step in db.session.scalars(
        select(Step).where(Step.id.in_({notice.step_id for notice, _invoice in notices})))}
    for notice, invoice in notices:
        days = steps[notice.step_id].deadline_days
        if not days:
            continue
        deadline = on + timedelta(days=days)
        if notice.deadline is None or deadline > notice.deadline:
            notice.deadline = deadline
        if invoice.dunning_next_on is not None and invoice.dunning_next_on <= notice.deadline:
            invoice.dunning_next_on = notice.deadline + timedelta(days=1)


def _earlier_links(letter: Letter) -> list[AccessLink]:
    return list(db.session.scalars(
        select(AccessLink).join(LetterPrint, LetterPrint.link_id == AccessLink.id)
        .where(LetterPrint.letter_id == letter.id, AccessLink.revoked_at.is_(None))))


def print_letter(letter: Letter, *, on: date, part: int, base_url: str, ttl_days: int,
                 now: datetime | None = None) -> Printed | Withdrawn:
    """Print one letter in the batch of day `on` (see the module)."""
    now = now or utcnow()
    message = db.session.get(Message, letter.message_id)
    assert message is not None  # letters.message_id: NOT NULL, deleted with its message
    left, gone = _still_due(message, on)
    if not left:
        return _withdraw(letter, message, gone, now)
    for notice in gone:
        notice.status = NoticeStatus.PAID_BEFORE
    _count_deadlines_from(on, left)
    for link in _earlier_links(letter):
        revoke_link(link, actor=ACTOR, reason="letter_printed_again", now=now)
    customer = db.session.get(Customer, letter.customer_id)
    address = postal_address(customer) if customer is not None else None
    if address is not None:  # where the customer lives now (an agent may have corrected it before a reprint)
        letter.address = address
    oldest = left[0][1]
    issued = issue_code_link(oldest, ttl_days=ttl_days, actor=ACTOR, base_url=base_url, now=now)
    creditor = oldest.creditor
    expires = local_today(creditor.country, issued.link.expires_at)
    facts = facts_for(letter, message, left, on=on, link_expires=expires)
    rendered = render_letter(facts, LetterLink(issued.url, issued.typed), logo_src=logo_of(creditor))
    digest = checksum(rendered.pdf)
    number = (db.session.scalar(select(func.count()).select_from(LetterPrint)
                                .where(LetterPrint.letter_id == letter.id)) or 0) + 1
    printed = LetterPrint(creditor_id=letter.creditor_id, letter_id=letter.id, link_id=issued.link.id, batch=on,
                          part=part, locale=facts["locale"], pages=rendered.pages, sha256=digest,
                          file_name=f"{on.isoformat()}-{part}-letter-{letter.id}-{number}.pdf", facts=facts,
                          printed_at=now)
    db.session.add(printed)
    letter.status, letter.batch, letter.pages, letter.sha256, letter.printed_at = (
        LetterStatus.PRINTED, on, rendered.pages, digest, now)
    message.subject, message.body = kept_text(facts)
    message.subject = (message.subject or "")[:300] or None
    if message.status == MessageStatus.QUEUED:
        message.status, message.status_at = MessageStatus.SENT, now
    for _notice, invoice in left:
        record_event(invoice, "letter_printed", ACTOR, letter=letter.id, batch=on.isoformat(), pages=rendered.pages,
                     again=number > 1)
    db.session.flush()
    return Printed(printed, rendered.pdf)


def print_batch(on: date, *, base_url: str, ttl_days: int, creditor_id: int | None = None,
                now: datetime | None = None) -> Iterator[Printed | Withdrawn]:
    """Print every letter due on day `on` as the batch's next part, one at a time (the caller writes
    each file as it comes, then the manifest, then commits)."""
    take_lock()
    letters = due(on, creditor_id)
    if not letters:
        return
    part = next_part(on)
    for letter in letters:
        yield print_letter(letter, on=on, part=part, base_url=base_url, ttl_days=ttl_days, now=now)


# --- the same files again -------------------------------------------------------------------------------------


@dataclass
class Copy:
    print: LetterPrint
    pdf: bytes | None  # None: its link is gone or its key no longer listed: it cannot be made again
    same: bool  # the same bytes as when it was printed (its SHA-256)
    live: bool = False  # its link still opens the bill (not revoked, e.g. by a print since, nor expired)


def copy_of(printed: LetterPrint, base_url: str) -> Copy:
    """A print made again from its facts and its link's short code (derived again): the same bytes
    unless the creditor's logo, the letter's template or the translations changed since."""
    link = db.session.get(AccessLink, printed.link_id) if printed.link_id else None
    issued = code_link(link, base_url) if link is not None else None
    if issued is None:
        return Copy(printed, None, False)
    creditor = db.session.get(Creditor, printed.creditor_id)
    assert creditor is not None
    pdf = render_letter(printed.facts, LetterLink(issued.url, issued.typed), logo_src=logo_of(creditor)).pdf
    live = link is not None and link.revoked_at is None and link.expires_at > utcnow()
    return Copy(printed, pdf, checksum(pdf) == printed.sha256, live)


def reprint_batch(on: date, *, base_url: str, creditor_id: int | None = None) -> Iterator[Copy]:
    """Every print of the batch of day `on` made again (nothing changes in the database)."""
    for printed in batch_prints(on, creditor_id):
        yield copy_of(printed, base_url)


def latest_print(letter: Letter) -> LetterPrint | None:
    return db.session.scalars(select(LetterPrint).where(LetterPrint.letter_id == letter.id)
                              .order_by(LetterPrint.id.desc()).limit(1)).first()


# --- the back office ------------------------------------------------------------------------------------------


def request_reprint(letter: Letter, *, actor: str, now: datetime | None = None) -> None:
    """An agent's "print again": the letter goes into the next batch, which prints it with a new link and
    revokes the one printed before. Refused (Conflict) for a letter not printed yet or withdrawn."""
    if letter.status != LetterStatus.PRINTED:
        raise Conflict(f"the letter is {letter.status}")
    now = now or utcnow()
    letter.status, letter.reprint_requested_at, letter.reprint_requested_by = LetterStatus.PENDING, now, actor[:64]
    message = db.session.get(Message, letter.message_id)
    for invoice_id in db.session.scalars(select(Notice.invoice_id).where(Notice.message_id == letter.message_id)):
        invoice = db.session.get(Invoice, invoice_id)
        assert invoice is not None
        record_event(invoice, "letter_reprint_requested", actor, letter=letter.id,
                     message=message.id if message else None)
    db.session.flush()


@dataclass
class LetterRow:
    """A letter as the back office lists it."""

    letter: Letter
    decided_at: datetime
    invoices: list[str]  # the numbers of the bills in it
    prints: int


def letters_of(customer: Customer) -> list[LetterRow]:
    """The customer's letters, newest first (the back office's customer page)."""
    letters = list(db.session.execute(
        select(Letter, Message.created_at).join(Message, Message.id == Letter.message_id)
        .where(Letter.customer_id == customer.id, Letter.creditor_id == customer.creditor_id)
        .order_by(Letter.id.desc())).all())
    if not letters:
        return []
    message_ids = [letter.message_id for letter, _at in letters]
    numbers: dict[int, list[str]] = {}
    for message_id, number in db.session.execute(
            select(Notice.message_id, Invoice.number).join(Invoice, Invoice.id == Notice.invoice_id)
            .where(Notice.message_id.in_(message_ids)).order_by(Invoice.due_date, Invoice.id)):
        if message_id is not None:
            numbers.setdefault(message_id, []).append(number)
    letter_ids = [letter.id for letter, _at in letters]
    prints = dict(db.session.execute(
        select(LetterPrint.letter_id, func.count()).where(LetterPrint.letter_id.in_(letter_ids))
        .group_by(LetterPrint.letter_id)).all())
    return [LetterRow(letter, at, numbers.get(letter.message_id, []), prints.get(letter.id, 0))
            for letter, at in letters]


def checksum(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()


def manifest_row(printed: LetterPrint) -> dict[str, object]:
    """A print as the manifest lists it for the print-and-mail service."""
    letter = db.session.get(Letter, printed.letter_id)
    creditor = db.session.get(Creditor, printed.creditor_id)
    assert letter is not None and creditor is not None
    customer = db.session.get(Customer, letter.customer_id)
    return {"letter_id": letter.id, "creditor": creditor.slug, "customer": customer.external_ref if customer else "",
            "country": (letter.address or {}).get("country") or "", "pages": printed.pages,
            "sha256": printed.sha256, "file": printed.file_name}
