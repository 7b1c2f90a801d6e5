"""The hand-off run (`flask collection run`, cron): it owns its transactions, one per bill, as the
outbox dispatcher does, so that one bill's problem holds back no other."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from app.billing.models import Invoice
from app.debt_collection.partners import policy_of
from app.debt_collection.services import NotEligible, candidates, check, hand_off
from app.extensions import db

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    handed_off: list[tuple[str, str]] = field(default_factory=list)  # (invoice number, case id)
    eligible: list[str] = field(default_factory=list)  # dry run: invoice numbers
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)  # invoice number: reasons
    failed: list[str] = field(default_factory=list)


def run(today_for: Callable[[str], date], *, dry_run: bool = False, creditor_id: int | None = None,
        actor: str = "scheduler", on: date | None = None) -> RunReport:
    """Hand off every eligible bill (each in its own transaction; this commits), or with `dry_run`
    list them and change nothing. `on`: the day to decide as (`--date`; `today_for` gives it then).
    Safe from cron every few minutes and in parallel: a bill another run holds is skipped, and one it
    handed off meanwhile is found in collection under the lock."""
    report = RunReport()
    for invoice_id in candidates(creditor_id=creditor_id, on=on):
        if dry_run:
            invoice = db.session.get(Invoice, invoice_id)
            decision = check(invoice, policy_of(invoice.creditor_id), today_for(invoice.creditor.country))
            if decision.eligible:
                report.eligible.append(invoice.number)
            else:
                report.skipped[invoice.number] = decision.reasons
            continue
        try:
            case = hand_off(invoice_id, actor=actor, today_for=today_for, skip_locked=True)
        except NotEligible as exc:
            db.session.rollback()
            number = db.session.scalar(select(Invoice.number).where(Invoice.id == invoice_id))
            report.skipped[number] = exc.reasons
            continue
        except Exception:
            db.session.rollback()
            log.exception("hand-off of invoice %s failed", invoice_id)
            report.failed.append(str(invoice_id))
            continue
        number = case.invoice.number
        db.session.commit()
        report.handed_off.append((number, case.public_id))
    if dry_run:
        db.session.rollback()
    return report
