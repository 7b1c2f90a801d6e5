"""Which self-service options fit which kind of bill, as data (docs/instalments.md).

An on-account payment (a monthly Abschlag, a konto) is settled by the yearly statement: splitting it
would only push one month's share into the next ones, so no creditor offers it, and neither is a
prepayment (paid before the service is given) split. Small balances are not split either: below
the least balance of the bill's currency (or the creditor's own, `plan_min_balance`) a plan costs
more to run than it helps, and "more time" or "pay on a later date" fits better.

The least balances below are this portal's defaults (our choice, not a legal rule); a creditor sets
its own with `flask resolutions rules SLUG --plan-min-balance`.
"""

from __future__ import annotations

from app.billing.models import Invoice, InvoiceKind
from app.creditors.models import Creditor

#: Self-service options each kind of bill never offers (the others follow the creditor's rules).
NOT_OFFERED: dict[str, frozenset[str]] = {
    InvoiceKind.STANDARD: frozenset(),
    InvoiceKind.ON_ACCOUNT: frozenset({"plan", "plan_request"}),
    InvoiceKind.PREPAYMENT: frozenset({"plan", "plan_request"}),
}

#: The least balance an instalment plan is offered for, by currency (minor units), when the creditor
#: sets none. A currency not listed: 100 of its units.
PLAN_MIN_BALANCE: dict[str, int] = {
    "NOK": 100_000,  # 1 000 kr
    "SEK": 100_000,  # 1 000 kr
    "DKK": 75_000,  # 750 kr
    "EUR": 10_000,  # 100 €
    "GBP": 10_000,  # £100
    "CHF": 10_000,
}
DEFAULT_PLAN_MIN_UNITS = 100


def plan_min_balance(creditor: Creditor, currency: str | None = None) -> int:
    """The least balance a plan is offered for: the creditor's own, else its currency's."""
    if creditor.plan_min_balance:
        return creditor.plan_min_balance
    currency = currency or creditor.currency
    return PLAN_MIN_BALANCE.get(currency, DEFAULT_PLAN_MIN_UNITS * 100)


def offered(invoice: Invoice, what: str) -> bool:
    """Whether the kind of bill allows `what` (dispute, promise, deferral, plan, plan_request) at all."""
    return what not in NOT_OFFERED.get(invoice.kind or InvoiceKind.STANDARD, frozenset())


def plans_fit(invoice: Invoice) -> bool:
    """A plan (offered or asked for) fits this bill: its kind allows one and its balance is large enough."""
    return offered(invoice, "plan") and invoice.balance >= plan_min_balance(invoice.creditor, invoice.currency)
