"""What a creditor says about the dunning of one invoice or one customer (the creditor API, the invoice
import): the plan an invoice follows, by name, and exclusions. Adds and flushes; the caller commits.
Every problem is InvalidData naming its field, as the API shows it."""

from __future__ import annotations

from datetime import date

from app.billing.models import Customer, Invoice
from app.core.dates import local_today
from app.dunning import services
from app.dunning.models import Plan
from app.errors import InvalidData
from app.models import utcnow


def plan_by_name(creditor_id: int, name: str, version: int | None = None, *, field: str = "plan") -> Plan:
    """The creditor's plan of that name (its latest version, or `version`); InvalidData on `field` when none."""
    plan = services.find_plan(creditor_id, name, version)
    if plan is None:
        names = sorted({p.name for p in services.plans_of(creditor_id)})
        known = f"your plans: {', '.join(names)}" if names else "you have no dunning plan yet"
        raise InvalidData({field: f"no plan named {name!r}{f' version {version}' if version else ''} ({known})"})
    return plan


def set_invoice_dunning(invoice: Invoice, *, plan: str | None = None, version: int | None = None,
                        excluded: bool | None = None, actor: str, today: date, prefix: str = "") -> None:
    """Remind the invoice by the plan of this name (when given), and take it out of the run or put it
    back (when `excluded` is given). `prefix`: how the input names these fields ("dunning_" on import)."""
    if version is not None and plan is None:
        raise InvalidData({f"{prefix}version": "give the plan's name with its version"})
    if plan is not None:
        found = plan_by_name(invoice.creditor_id, plan, version, field=f"{prefix}plan")
        if invoice.dunning_plan_id != found.id:
            try:
                services.assign_plan(invoice, found, actor=actor, today=today)
            except InvalidData as exc:
                raise InvalidData({f"{prefix}plan": "; ".join(f"{k}: {v}" for k, v in exc.errors.items())}) \
                    from None
    if excluded is not None and excluded != invoice.dunning_excluded:
        services.exclude_invoice(invoice, excluded, actor=actor, today=today)


def set_customer_dunning(customer: Customer, *, excluded: bool, actor: str, today: date) -> int:
    """Take every bill of the customer out of the run, or put them back: how many bills."""
    if excluded == customer.dunning_excluded:
        return 0
    return services.exclude_customer(customer, excluded, actor=actor, today=today)


CONSENTS = {"email": "email_allowed", "sms": "sms_allowed", "electronic_notices": "electronic_notices_allowed"}


def update_contact(customer: Customer, given: dict) -> Customer:
    """The creditor API's contact body (email, phone, address, preferred_channel, preferred_locale,
    time_zone, consents {email, sms, electronic_notices}), as far as given, through
    `services.update_contact_points`: its problems named as the body names them (consents.email...)."""
    data = {key: value for key, value in given.items() if key != "consents"}
    for key, value in (given.get("consents") or {}).items():
        data[CONSENTS[key]] = value
    try:
        return services.update_contact_points(customer, data)
    except InvalidData as exc:
        names = {column: f"consents.{key}" for key, column in CONSENTS.items()}
        raise InvalidData({names.get(key, key): problem for key, problem in exc.errors.items()}) from None


def on_invoice_imported(invoice: Invoice, *, payload: object, actor: str, **_: object) -> None:
    """An imported invoice's plan by name, or kept out of the portal's reminders, as its payload says
    (`billing.services.invoice_imported`: the API's and the CLI's imports alike)."""
    if not isinstance(payload, dict) or (payload.get("dunning_plan") is None and not payload.get("dunning_excluded")):
        return
    set_invoice_dunning(invoice, plan=payload.get("dunning_plan"), excluded=payload.get("dunning_excluded"),
                        actor=actor, today=local_today(invoice.creditor.country, utcnow()), prefix="dunning_")
