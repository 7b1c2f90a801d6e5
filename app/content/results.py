"""An experiment's results per variant: of the bills that saw it, how many were paid (the pay rate), how
many days after the first sight (days to pay), and how many clicked; each with its 95 % interval from
`app.analytics.intervals` (Wilson for rates, Student's t for means, by SciPy)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.analytics.intervals import Interval, mean_interval, rate_interval
from app.billing.models import Invoice
from app.content.models import Block, Exposure, Lead, Variant
from app.extensions import db
from app.payments.models import Payment


@dataclass(frozen=True)
class VariantResult:
    variant: Variant
    seen: int
    paid: int
    clicked: int
    leads: int
    pay_rate: Interval
    days_to_pay: Interval
    click_rate: Interval


def results(block: Block) -> list[VariantResult]:
    """Each variant's figures (two statements)."""
    last_paid = (select(func.max(Payment.received_at)).where(Payment.invoice_id == Exposure.invoice_id)
                 .correlate(Exposure).scalar_subquery())
    rows = db.session.execute(
        select(Exposure.variant_id, Exposure.first_seen_at, Exposure.clicks, Invoice.total, Invoice.amount_paid,
               last_paid)
        .join(Invoice, Invoice.id == Exposure.invoice_id)
        .where(Exposure.block_id == block.id, Exposure.first_seen_at.is_not(None))).all()
    leads = dict(db.session.execute(select(Lead.variant_id, func.count(Lead.id)).where(Lead.block_id == block.id)
                                    .group_by(Lead.variant_id)).all())
    found = []
    for variant in block.variants:
        mine = [row for row in rows if row[0] == variant.id]
        paid_days = []
        for _vid, seen_at, _clicks, total, amount_paid, paid_at in mine:
            if amount_paid >= total and paid_at is not None:
                paid_days.append(max(0.0, (_aware(paid_at) - _aware(seen_at)).total_seconds() / 86400))
        clicked = sum(1 for row in mine if row[2])
        found.append(VariantResult(
            variant=variant, seen=len(mine), paid=len(paid_days), clicked=clicked, leads=int(leads.get(variant.id, 0)),
            pay_rate=rate_interval(len(paid_days), len(mine)), days_to_pay=mean_interval(paid_days),
            click_rate=rate_interval(clicked, len(mine))))
    return found


def _aware(moment):
    """A moment read by a scalar subquery comes back naive (SQLite) or as text: as UTC."""
    from datetime import UTC, datetime

    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
