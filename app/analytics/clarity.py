""""Was this bill clear?": the customer's one tap at the end of the bill page and on a receipt, and the
clarity score per creditor (docs/analytics.md).

One answer per bill and place (`bill`, `receipt`): answering again replaces it. A comment lands in the
back office's inbox as a contact request from the customer (topic "a question about the bill", the
answer by e-mail to the address on file), unless the customer has no e-mail address on file; it is
kept with the answer either way. Adds and flushes; the caller commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.analytics.models import ClarityAnswer
from app.billing.models import Invoice
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.support import services as support

PLACES = ("bill", "receipt")
COMMENT_MAX = support.MESSAGE_MAX
TOPIC = "bill_question"


def check(place: str | None, clear: str | None, comment: str | None) -> tuple[str, bool, str | None]:
    """The form's fields, checked: (place, clear?, comment or None). Raises InvalidData."""
    problems: dict[str, str] = {}
    if place not in PLACES:
        problems["place"] = "choose"
    if clear not in ("yes", "no"):
        problems["clear"] = "choose"
    text = (comment or "").strip()
    if len(text) > COMMENT_MAX:
        problems["comment"] = "too_long"
    if problems:
        raise InvalidData(problems)
    return place, clear == "yes", text or None  # type: ignore[return-value]


def answer(invoice: Invoice, *, place: str, clear: bool, comment: str | None, locale: str, session_key: str,
           attachment_dir: str, now: datetime | None = None) -> ClarityAnswer:
    """Record the customer's answer (replacing their earlier one for this bill and place) and send a
    comment to the inbox. `session_key` (the form's CSRF token) makes a double submit of the same
    comment one contact request."""
    now = now or utcnow()
    found = db.session.scalar(select(ClarityAnswer).where(ClarityAnswer.invoice_id == invoice.id,
                                                          ClarityAnswer.place == place))
    if found is None:
        found = ClarityAnswer(creditor_id=invoice.creditor_id, invoice_id=invoice.id, place=place, created_at=now)
        db.session.add(found)
    found.clear, found.locale, found.updated_at = clear, locale, now
    if comment:
        found.comment = comment
        if invoice.customer.email:
            key = hashlib.sha256(f"clarity:{invoice.id}:{place}:{session_key}:{comment}".encode()).hexdigest()[:40]
            request, _created = support.open_request(
                invoice, topic=TOPIC, message=comment, contact_method="email", contact_email=None,
                contact_phone=None, callback_date=None, callback_window=None, upload=None, locale=locale,
                submission_key=key, attachment_dir=attachment_dir, now=now)
            found.support_request_id = request.id
    db.session.flush()
    return found


@dataclass(frozen=True)
class Clarity:
    """A creditor's answers given (or changed last) in a period: how many, how many said clear."""

    answers: int
    clear: int
    comments: int

    @property
    def score(self) -> float | None:
        """The share of answers that said the bill was clear."""
        return self.clear / self.answers if self.answers else None


def clarity(creditor_id: int, since: datetime, until: datetime) -> Clarity:
    answers, clear, comments = db.session.execute(
        select(func.count(), func.count().filter(ClarityAnswer.clear.is_(True)),
               func.count(ClarityAnswer.comment))
        .join(Invoice, Invoice.id == ClarityAnswer.invoice_id)
        .where(ClarityAnswer.creditor_id == creditor_id, Invoice.livemode.is_(True),
               ClarityAnswer.updated_at >= since, ClarityAnswer.updated_at < until)
    ).one()
    return Clarity(int(answers or 0), int(clear or 0), int(comments or 0))
