"""Which of a bill's actions apply to it as it is now, and for each that does not, why: the bill's page
offers only what can be done (no "pause reminders" on a paid bill) and says why the rest is not there."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from app.billing.models import Invoice, InvoiceStatus
from app.billing.services import HOLDABLE


@dataclass(frozen=True)
class Applicable:
    """Each action: None if it applies, else the words that say why not."""

    hold: str | None
    link: str | None
    payment: str | None
    credit: str | None

    def any_missing(self) -> list[str]:
        """The reasons, once each, for the actions not offered."""
        said: list[str] = []
        for reason in (self.hold, self.link, self.payment, self.credit):
            if reason and reason not in said:
                said.append(reason)
        return said


def _closed(invoice: Invoice) -> str | None:
    if invoice.status == InvoiceStatus.PAID:
        return _("The bill is paid.")
    if invoice.status == InvoiceStatus.CANCELLED:
        return _("The bill is cancelled.")
    if invoice.status == InvoiceStatus.WRITTEN_OFF:
        return _("The bill is written off.")
    return None


def applicable(invoice: Invoice, creditable: dict[int, int]) -> Applicable:
    """What applies to `invoice`; `creditable` is what each line may still be credited. (Handing off now
    is the hand-off's own check, made as an agent's hand-off: `debt_collection.services.check`.)"""
    closed = _closed(invoice)
    if closed:
        hold = closed + " " + _("Reminders stopped by themselves.")
    elif invoice.status == InvoiceStatus.ON_HOLD:
        hold = None  # resume
    elif invoice.status == InvoiceStatus.DISPUTED:
        hold = _("Reminders are paused while the dispute is open.")
    elif invoice.status == InvoiceStatus.IN_COLLECTION:
        hold = _("The collection partner has the bill: the portal sends no reminders.")
    elif invoice.status not in HOLDABLE:
        hold = _("Reminders cannot be paused for a bill in this state.")
    else:
        hold = None
    link = (closed + " " + _("A link would show nothing to pay.")) if closed else None
    if closed:
        payment = closed + " " + _("Nothing is left to pay.")
    elif invoice.balance <= 0:
        payment = _("Nothing is left to pay.")
    else:
        payment = None
    if invoice.status in (InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF):
        credit = closed
    elif not any(amount > 0 for amount in creditable.values()):
        credit = _("Every line is credited in full.")
    else:
        credit = None
    return Applicable(hold, link, payment, credit)
