"""Who is calling (bearer API key -> creditor, kept in `g.creditor`, and the key's mode, live or test,
in `g.livemode`) and the one place that scopes what they may see: every lookup of the API goes
through `invoice_or_404` or `customer_or_404`, scoped by the creditor and the mode: a test key's
data is as unknown to a live key as another creditor's, and the other way round."""

from __future__ import annotations

from flask import g
from sqlalchemy import select

from app.apikit.errors import ApiError
from app.apikit.reading import bearer_key
from app.billing.models import Customer, Invoice
from app.creditors.models import Creditor
from app.creditors.services import api_key_for
from app.extensions import db


def authenticate() -> Creditor:
    """Find the creditor the request's key belongs to and keep it in `g`, or raise a 401."""
    key = bearer_key()
    if key is None:
        raise ApiError(
            401, "unauthorized", "Send your API key in the header 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = api_key_for(key)
    if found is None:
        raise ApiError(
            401, "unauthorized", "The API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    g.creditor = found.creditor
    g.livemode = found.livemode
    return found.creditor


def current_creditor() -> Creditor:
    """The creditor authenticated for this request."""
    return g.creditor


def current_livemode() -> bool:
    """Whether the request's key is a live key (False: a test key)."""
    return g.livemode


def invoice_or_404(number: str, *, for_update: bool = False) -> Invoice:
    """The calling creditor's invoice with this number. Another creditor's invoice is as unknown as
    a number that does not exist. `for_update` locks the row (PostgreSQL) before a state change."""
    query = select(Invoice).where(Invoice.creditor_id == current_creditor().id, Invoice.livemode == current_livemode(),
                                  Invoice.number == number)
    if for_update:
        query = query.with_for_update()
    invoice = db.session.scalar(query)
    if invoice is None:
        raise ApiError(404, "not_found", "There is no invoice with this number.")
    return invoice


def customer_or_404(external_ref: str) -> Customer:
    """The calling creditor's customer with this reference (yours: `customer.external_ref`). Another
    creditor's customer is as unknown as a reference that does not exist."""
    customer = db.session.scalar(select(Customer).where(Customer.creditor_id == current_creditor().id,
                                                        Customer.livemode == current_livemode(),
                                                        Customer.external_ref == external_ref))
    if customer is None:
        raise ApiError(404, "not_found", "There is no customer with this reference.")
    return customer


def block_or_404(public_id: str):
    """The calling creditor's content block in the key's mode. Another creditor's is as unknown as none."""
    from app.content.services import find_block

    block = find_block(current_creditor().id, public_id, livemode=current_livemode())
    if block is None:
        raise ApiError(404, "not_found", "There is no content block with this id.")
    return block
