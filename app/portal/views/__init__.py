"""The customer pages, on one blueprint (`bp`), one module per part:

- bill: the link (/l/<token>), the step-up, the bill page, its lines, PDF, QR code and receipts;
- codes: a letter's short code (/k/<code>), opening the bill as the link does;
- pay: starting a payment, the embedded pay step, and the return from the provider;
- clarity: "Was this bill clear?", the one-tap answer from the bill page and the receipts.

Every page is no-store and takes ?lang=xx; every bill route is guarded by
`access.guard.bill_required`, as the support and self-service pages are.
"""

from __future__ import annotations

from flask import Blueprint

from app.i18n import LOCALE_NAMES, SUPPORTED_LOCALES, language_switch

bp = Blueprint("portal", __name__)
bp.before_request(language_switch)


@bp.app_context_processor
def _locales():
    return {"supported_locales": SUPPORTED_LOCALES, "locale_names": LOCALE_NAMES}


from app.portal.views import bill, clarity, codes, pay  # noqa: E402,F401  (their routes)
