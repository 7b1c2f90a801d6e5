"""Money by hand: paying back what is owed on a payment (supervisors and admins), a bank credit the
import kept (matched to a bill, or recorded as sent back), and a message that went dead (replayed)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import or_

from app.backoffice import inbox as items
from app.backoffice.forms import MatchForm, RefundForm, ReturnForm
from app.backoffice.views import SUPERVISING, bp, may, me, need, record, scope, scoped
from app.backoffice.words import problems
from app.billing.models import Invoice
from app.creditors.models import Creditor
from app.errors import Conflict, IllegalTransition, InvalidData
from app.extensions import db
from app.money import parse_amount, to_decimal
from app.outbox.models import OutboxMessage
from app.outbox.services import replay
from app.payments.bank.matching import reference_key
from app.payments.bank.models import BankEntry
from app.payments.bank.services import match_entry, return_entry
from app.payments.gateways.base import GatewayError
from app.payments.models import Payment
from app.payments.providers import payment_gateway
from app.payments.refunds import refund_channels, refund_payment, refunds_of


def _refund_page(payment: Payment, form: RefundForm, problem_list: list[str] | None = None, status: int = 200):
    return render_template(
        "backoffice/refund.html", payment=payment, invoice=payment.invoice, form=form, problems=problem_list or [],
        refunds=refunds_of([payment.id]), channels=refund_channels(payment),
        supervising=may(payment.invoice.creditor_id, SUPERVISING), mark=items.mark_of("refund", payment.id),
    ), status


@bp.get("/payments/<int:payment_id>")
@login_required
def payment(payment_id: int):
    """A payment with money owed back, its refunds, and the form to pay it back."""
    found = scoped(Payment, payment_id)
    record("payment_viewed", creditor_id=found.invoice.creditor_id, record_type="payment", record_id=found.public_ref)
    db.session.commit()
    form = RefundForm(data={"channel": refund_channels(found)[0]}).fresh()
    if found.refund_due:
        form.amount.data = format(to_decimal(found.refund_due, found.currency), "f")
    return _refund_page(found, form)


@bp.post("/payments/<int:payment_id>/refund")
@login_required
def refund(payment_id: int):
    """Pay back what is owed on the payment: through its provider, or record the bank's transfer."""
    found = scoped(Payment, payment_id)
    creditor_id = found.invoice.creditor_id
    need(creditor_id, SUPERVISING)
    form = RefundForm()
    gateway = None
    try:
        if not form.validate_on_submit():
            raise InvalidData({"amount": "required"})
        try:
            amount = parse_amount(form.amount.data, found.currency) or 0
        except ValueError:
            raise InvalidData({"amount": "not_an_amount"}) from None
        if form.channel.data == "provider":
            creditor = db.session.get(Creditor, creditor_id)
            keyed = payment_gateway(creditor.slug, found.provider, livemode=found.invoice.livemode)
            gateway = keyed[1] if keyed else None
        done = refund_payment(found, amount, channel=form.channel.data, key=form.submission.data,
                              actor=f"agent:{me().id}", gateway=gateway, note=form.note.data)
    except InvalidData as exc:
        db.session.rollback()
        return _refund_page(db.session.get(Payment, payment_id), form, problems(exc.errors), 422)
    except GatewayError:
        db.session.rollback()
        return _refund_page(db.session.get(Payment, payment_id), form,
                            [_("The payment provider did not take the refund. Nothing was recorded; try again, or "
                               "pay it back by bank transfer.")], 502)
    record("refund_sent", creditor_id=creditor_id, record_type="payment", record_id=found.public_ref,
           amount=done.amount, channel=done.channel)
    db.session.commit()
    flash(_("The refund is recorded."), "done")
    return redirect(url_for(".payment", payment_id=payment_id), code=303)


# --- bank credits the import kept ---------------------------------------------------------------------


def _candidates(entry: BankEntry) -> list[Invoice]:
    """Open bills of the entry's creditor that might be it: its amount, or its payer's name."""
    if entry.creditor_id is None:
        return []
    query = scope().select(Invoice).where(
        Invoice.creditor_id == entry.creditor_id, Invoice.status.not_in(("paid", "cancelled", "written_off")),
        Invoice.currency == entry.currency, Invoice.total - Invoice.amount_paid == entry.amount)
    return list(db.session.scalars(query.order_by(Invoice.due_date).limit(20)))


def _entry_page(entry: BankEntry, match: MatchForm | None = None, back: ReturnForm | None = None,
                problem_list: list[str] | None = None, status: int = 200):
    return render_template(
        "backoffice/bank_entry.html", entry=entry, candidates=_candidates(entry), match=match or MatchForm(),
        back=back or ReturnForm(), problems=problem_list or [], mark=items.mark_of("bank", entry.id),
        invoice=db.session.get(Invoice, entry.invoice_id) if entry.invoice_id else None,
    ), status


@bp.get("/bank/<int:entry_id>")
@login_required
def bank_entry(entry_id: int):
    """A bank credit kept for an agent: why, the bills it might pay, and what to do with it."""
    found = scoped(BankEntry, entry_id)
    record("bank_entry_viewed", creditor_id=found.creditor_id, record_type="bank_entry", record_id=found.id)
    db.session.commit()
    return _entry_page(found)


@bp.post("/bank/<int:entry_id>/match")
@login_required
def match(entry_id: int):
    """Settle the credit against the bill the agent names (its number or payment reference)."""
    found = scoped(BankEntry, entry_id)
    form = MatchForm()
    try:
        if not form.validate_on_submit():
            raise InvalidData({"invoice": "required"})
        wanted = form.invoice.data.strip()
        invoice = db.session.scalar(scope().select(Invoice).where(
            Invoice.creditor_id == found.creditor_id,
            or_(Invoice.number == wanted, Invoice.payment_reference == reference_key(wanted))))
        if invoice is None:
            raise InvalidData({"invoice": "unknown_invoice"})
        match_entry(found, invoice, actor=f"agent:{me().id}", note=form.note.data)
    except InvalidData as exc:
        db.session.rollback()
        words = [_("No bill of this creditor has that number or reference.")] \
            if exc.errors.get("invoice") == "unknown_invoice" else problems(exc.errors)
        return _entry_page(db.session.get(BankEntry, entry_id), match=form, problem_list=words, status=422)
    except IllegalTransition:
        db.session.rollback()
        return _entry_page(db.session.get(BankEntry, entry_id), match=form,
                           problem_list=[_("This credit has been dealt with already.")], status=409)
    record("bank_entry_matched", creditor_id=found.creditor_id, record_type="bank_entry", record_id=found.id,
           invoice=invoice.number)
    db.session.commit()
    flash(_("The payment is settled against bill %(number)s.", number=invoice.number), "done")
    return redirect(url_for(".bank_entry", entry_id=entry_id), code=303)


@bp.post("/bank/<int:entry_id>/return")
@login_required
def return_credit(entry_id: int):
    """Record that the credit was sent back to the payer (it pays no bill of this creditor)."""
    found = scoped(BankEntry, entry_id)
    form = ReturnForm()
    try:
        if not form.validate_on_submit():
            raise InvalidData({"note": "required"})
        return_entry(found, actor=f"agent:{me().id}", note=form.note.data)
    except InvalidData as exc:
        db.session.rollback()
        return _entry_page(db.session.get(BankEntry, entry_id), back=form, problem_list=problems(exc.errors),
                           status=422)
    except IllegalTransition:
        db.session.rollback()
        return _entry_page(db.session.get(BankEntry, entry_id), back=form,
                           problem_list=[_("This credit has been dealt with already.")], status=409)
    record("bank_entry_returned", creditor_id=found.creditor_id, record_type="bank_entry", record_id=found.id)
    db.session.commit()
    flash(_("The credit is recorded as sent back."), "done")
    return redirect(url_for(".bank_entry", entry_id=entry_id), code=303)


# --- dead letters ------------------------------------------------------------------------------------


@bp.get("/outbox/<int:message_id>")
@login_required
def dead_letter(message_id: int):
    """A message that could not be delivered: what, to whom, how often it was tried, the last error."""
    found = scoped(OutboxMessage, message_id)
    record("dead_letter_viewed", creditor_id=found.creditor_id, record_type="outbox", record_id=found.id)
    db.session.commit()
    return render_template("backoffice/dead_letter.html", message=found, mark=items.mark_of("outbox", found.id))


@bp.post("/outbox/<int:message_id>/replay")
@login_required
def replay_letter(message_id: int):
    """Put a dead message back in the queue with a fresh set of attempts."""
    found = scoped(OutboxMessage, message_id)
    try:
        replay(found.id)
    except Conflict:
        db.session.rollback()
        flash(_("This message is not dead any more: it is on its way or delivered."), "problem")
        return redirect(url_for(".dead_letter", message_id=message_id), code=303)
    record("dead_letter_replayed", creditor_id=found.creditor_id, record_type="outbox", record_id=found.id,
           kind=found.kind)
    db.session.commit()
    flash(_("The message is queued again."), "done")
    return redirect(url_for(".dead_letter", message_id=message_id), code=303)

