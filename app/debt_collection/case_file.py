"""The standard case file: one JSON document with everything a collection partner needs to continue
kindly, the same for every partner. Versioned (`schema_version`); described in
docs/debt-collection.md and by the JSON Schema docs/case-file-v1.schema.json, which the tests
validate every built file against.

Only what the partner needs about the debtor: who they are and how to reach them (name, address,
e-mail, phone, language, date of birth where the creditor has it, to tell namesakes apart), no
internal notes, no agents' names. Amounts are integer minor units with the currency; the
outstanding amount is split into principal, fees and interest, payments covering fees first,
then interest, then principal (the order Norway's and most collection laws prescribe).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.billing.corrections import credit_notes, credited_by_line, quantity_text
from app.billing.models import Invoice, InvoiceLine
from app.billing.services import payments_received, reminders_of
from app.core.dates import local_today, utc_iso
from app.debt_collection.models import Case, CaseEvent
from app.dunning import jurisdictions
from app.dunning.interest import default_interest
from app.dunning.models import Notice, Plan
from app.extensions import db
from app.links.signer import LinkSigner
from app.models import utcnow
from app.resolutions.models import Kind, Resolution
from app.resolutions.services import resolutions_for
from app.support.services import threads_for

#: 1.1: notices (the steps of the dunning plan the portal sent); 1.2: debtor.org_number, interest (rate,
#: base, the day it runs from) and partner_reports (returns, costs, plans, contact details, messages).
SCHEMA_VERSION = "1.2"
#: What partners report that the case file carries (`partner_reports`).
REPORTED = ("case_returned", "costs_added", "plan_agreed", "contact_updated", "message")
PDF_PURPOSE = "case_pdf"


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _utc(value: datetime | None) -> str | None:
    return utc_iso(value) if value is not None else None


def pdf_signer() -> LinkSigner:
    """Signs the case file's PDF address (the case id, salted for this purpose, with an age limit)."""
    days = current_app.config["COLLECTION_PDF_URL_DAYS"]
    return LinkSigner(current_app.config["LINK_SIGNING_KEYS"], days * 86400)


def pdf_url(case: Case) -> tuple[str, datetime]:
    """A signed URL of the invoice's PDF that works for COLLECTION_PDF_URL_DAYS, and when it stops."""
    token = pdf_signer().sign(case.public_id, PDF_PURPOSE)
    base = (case.invoice.creditor.portal_base_url or current_app.config["PORTAL_BASE_URL"]).rstrip("/")
    # debt_collection.views.pdf.case_pdf's path, built without a request (cron)
    path = f"/collection/cases/{token}/invoice.pdf"
    expires = utcnow() + timedelta(days=current_app.config["COLLECTION_PDF_URL_DAYS"])
    return base + path, expires


def case_of_pdf_token(token: str) -> str | None:
    """The case id a PDF address was signed for, if the signature is genuine and not too old."""
    return pdf_signer().unsign(token, PDF_PURPOSE)


def split_amounts(invoice: Invoice) -> dict:
    """What the bill asks for (after credit notes) and what is still owed, as principal, fees and
    interest; payments cover fees, then interest, then principal."""
    credited = credited_by_line(invoice.id)
    billed = {"principal": 0, "fees": 0, "interest": 0}
    for line in invoice.lines:
        remaining = line.gross - (credited[line.id].gross if line.id in credited else 0)
        billed[_part(line)] += remaining
    paid = max(invoice.amount_paid, 0)
    outstanding = dict(billed)
    for part in ("fees", "interest", "principal"):
        covered = min(paid, outstanding[part])
        outstanding[part] -= covered
        paid -= covered
    return {
        "currency": invoice.currency,
        "billed": {**billed, "total": sum(billed.values())},
        "paid": invoice.amount_paid,
        "outstanding": {**outstanding, "total": sum(outstanding.values())},
    }


def _part(line: InvoiceLine) -> str:
    if line.kind == "interest":
        return "interest"
    return "fees" if line.kind in ("reminder_fee", "other_fee") else "principal"


def _line(line: InvoiceLine, credited: dict) -> dict:
    return {
        "description": line.description, "kind": line.kind, "quantity": quantity_text(line.quantity), "unit": line.unit,
        "unit_price": line.unit_price, "vat_rate": line.vat_rate, "net": line.net, "vat": line.vat,
        "gross": line.gross, "credited": credited[line.id].gross if line.id in credited else 0,
        "period": {"start": _iso(line.period_start), "end": _iso(line.period_end)}
        if line.period_start and line.period_end else None,
    }


def _interaction(r: Resolution) -> dict:
    base = {"reference": r.reference, "status": r.status, "created_at": _utc(r.created_at),
            "closed_at": _utc(r.closed_at)}
    if r.kind == Kind.DISPUTE:
        return {**base, "reason": r.reason, "amount": r.amount or 0, "customer_message": r.message,
                "answer": r.answer, "whole_invoice": not r.line_ids}
    if r.kind == Kind.PROMISE:
        return {**base, "promised_date": _iso(r.new_date), "amount": r.amount or 0}
    if r.kind == Kind.DEFERRAL:
        return {**base, "old_due_date": _iso(r.old_date), "new_due_date": _iso(r.new_date)}
    return {**base, "months": r.months or len(r.instalments), "total": r.amount or 0,
            "customer_message": r.message,
            "instalments": [{"due_date": _iso(i.due_date), "amount": i.amount} for i in r.instalments]}


def notices_of(invoice_id: int) -> list[dict]:
    """The steps of the bill's dunning plan the portal sent (or an agent skipped), oldest first."""
    rows = db.session.execute(select(Notice, Plan.name, Plan.version, Plan.jurisdiction)
                              .join(Plan, Plan.id == Notice.plan_id).where(Notice.invoice_id == invoice_id)
                              .order_by(Notice.position, Notice.id)).all()
    return [{"position": n.position, "kind": n.kind, "status": n.status, "channel": n.channel,
             "sent_at": _utc(n.sent_at), "deadline": _iso(n.deadline), "fee": n.fee, "interest": n.interest,
             "plan": {"name": name, "version": version, "jurisdiction": jurisdiction}}
            for n, name, version, jurisdiction in rows]


def interest_of(invoice: Invoice, today: date) -> dict | None:
    """The default interest the law gives the creditor on the bill, for the partner to carry on: the
    rate now, what it runs on, from which day, what it came to by `today` and what the bill's lines
    charged of it. Germany (§ 288 BGB, the base rate of § 247 as it changes each half year) once the
    customer is in default; None elsewhere (no statutory interest the portal computes) and before."""
    if invoice.creditor.country != "DE":
        return None
    found = default_interest(invoice, today)
    if found.since is None or not found.rates:
        return None
    business = invoice.customer.kind == "business"
    charged = sum(line.gross for line in invoice.lines if line.kind == "interest")
    return {
        "rate": format(found.rates[-1][1].normalize(), "f"), "base": found.principal,
        "runs_from": found.since.isoformat(), "accrued_until": today.isoformat(), "accrued": found.amount,
        "charged": charged,
        "rates": [{"from": day.isoformat(), "rate": format(rate.normalize(), "f")} for day, rate in found.rates],
        "reference_rate": "Basiszinssatz (§ 247 BGB)",
        "points_above": format(jurisdictions.DE_INTEREST_POINTS["business" if business else "consumer"], "f"),
        "day_count": "actual/365", "law": "§ 288(2) BGB" if business else "§ 288(1) BGB",
    }


def partner_reports(invoice_id: int) -> list[dict]:
    """What collection partners reported on the bill beyond payments (in this case and earlier ones),
    oldest first: a case given back, costs added, a payment plan, new contact details, a message."""
    rows = db.session.execute(select(CaseEvent, Case.public_id).join(Case, Case.id == CaseEvent.case_id)
                              .where(Case.invoice_id == invoice_id, CaseEvent.kind.in_(REPORTED))
                              .order_by(CaseEvent.id)).all()
    reports = []
    for event, case_id in rows:
        details = event.details or {}
        report: dict = {"case_id": case_id, "type": event.kind, "at": _utc(event.created_at), "note": event.note}
        if event.kind == "case_returned":
            report["reason"] = details.get("reason")
        elif event.kind == "costs_added":
            report.update(costs=details.get("costs"), claim=details.get("claim"))
        elif event.kind == "plan_agreed":
            report.update(instalments=details.get("instalments") or [], claim=details.get("claim"))
        elif event.kind == "contact_updated":
            report["contact"] = details.get("contact") or {}
        else:
            report["message"] = details.get("message") or ""
        reports.append(report)
    return reports


def build_case_file(case: Case, amounts: dict, *, created_at: datetime | None = None) -> dict:
    """The case file of `case` (its invoice as it is now, `amounts` its `split_amounts`): at hand-off,
    and again for each `case.updated` delivery; the stored document is the one last sent."""
    invoice, creditor, customer = case.invoice, case.invoice.creditor, case.invoice.customer
    credited = credited_by_line(invoice.id)
    resolutions = resolutions_for(invoice.id)
    url, expires = pdf_url(case)
    by_kind = {kind: [_interaction(r) for r in resolutions if r.kind == kind] for kind in Kind.values()}
    return {
        "schema_version": SCHEMA_VERSION,
        "case_id": case.public_id,
        "created_at": _utc(created_at or utcnow()),
        "creditor": {
            "id": creditor.slug, "name": creditor.name, "legal_name": creditor.legal_name or creditor.name,
            "org_number": creditor.org_number, "country": creditor.country,
            "contact": {"email": creditor.support_email, "phone": creditor.support_phone},
            "bank_account": {"iban": creditor.iban, "bic": creditor.bic, "account_number": creditor.bank_account_no},
        },
        "debtor": {
            "kind": customer.kind, "customer_number": customer.external_ref, "name": customer.name,
            "address": {"line1": customer.address_line1, "line2": customer.address_line2,
                        "postcode": customer.postcode, "city": customer.city, "country": customer.country}
            if customer.address_line1 else None,
            "email": customer.email, "phone": customer.phone, "date_of_birth": _iso(customer.date_of_birth),
            "language": customer.preferred_locale or creditor.default_locale,
            "org_number": customer.org_number if customer.kind == "business" else None,
        },
        "invoice": {
            "number": invoice.number, "issue_date": _iso(invoice.issue_date), "due_date": _iso(invoice.due_date),
            "period": {"start": _iso(invoice.period_start), "end": _iso(invoice.period_end)}
            if invoice.period_start and invoice.period_end else None,
            "currency": invoice.currency, "payment_reference": invoice.payment_reference, "summary": invoice.summary,
            "lines": [_line(line, credited) for line in invoice.lines],
            "subtotal": invoice.subtotal, "vat_total": invoice.vat_total, "total": invoice.total,
            "credit_notes": [{"number": n.number, "date": _iso(n.created_at.date()), "amount": n.total,
                              "reason": n.reason} for n in credit_notes(invoice.id)],
        },
        "amounts": amounts,
        "payments": [{"date": e.data.get("paid_on"), "amount": e.data.get("amount"),
                      "method": e.data.get("method") or "other"} for e in payments_received(invoice.id)],
        "reminders": [{"sent_at": _utc(r.sent_at), "channel": r.channel, "final": r.final}
                      for r in reminders_of(invoice.id)],
        "notices": notices_of(invoice.id),
        "interest": interest_of(invoice, local_today(creditor.country, created_at or utcnow())),
        "partner_reports": partner_reports(invoice.id),
        "interactions": {
            "disputes": by_kind[Kind.DISPUTE],
            "promises": by_kind[Kind.PROMISE],
            "deferrals": by_kind[Kind.DEFERRAL],
            "plans": by_kind[Kind.PLAN],
            "conversations": [
                {"reference": t.reference, "topic": t.topic, "opened_at": _utc(t.created_at), "status": t.status,
                 "messages": [{"from": "customer" if m.author == "customer" else "creditor",
                               "at": _utc(m.created_at), "text": m.body} for m in t.messages]}
                for t in threads_for(invoice.id)
            ],
        },
        "documents": {"invoice_pdf": {"url": url, "expires_at": _utc(expires)}},
    }

