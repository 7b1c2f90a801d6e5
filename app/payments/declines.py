"""Why a payment failed, in the customer's words: a provider's decline code or refusal reason (kept as
the provider sent it in `PaymentAttempt.failure_reason`) mapped to one of a few kinds, each said in
the page's language. A reason we do not know is the generic "declined". The kinds never name fraud,
a lost or a stolen card: the customer is told to ask their bank, which knows why.

Sources: Stripe's decline codes (https://docs.stripe.com/declines/codes) and error codes
(https://docs.stripe.com/error-codes); Adyen's refusal reasons
(https://docs.adyen.com/development-resources/refusal-reasons). docs/payments/declines.md lists the mapping.
"""

from __future__ import annotations

from flask_babel import gettext as _

#: The provider's reason (lower case, as Stripe codes or Adyen's refusal reason texts) -> our kind.
REASONS: dict[str, str] = {
    # not enough money
    **dict.fromkeys(("insufficient_funds", "not enough balance", "no checking account available on card",
                     "no savings account available on card"), "funds"),
    # limits
    **dict.fromkeys(("card_velocity_exceeded", "withdrawal_amount_exceeded", "withdrawal_count_limit_exceeded",
                     "withdrawal amount exceeded", "withdrawal count exceeded", "invalid amount", "invalid_amount"),
                    "limit"),
    # an expired card
    **dict.fromkeys(("expired_card", "expired card", "invalid_expiry_month", "invalid_expiry_year",
                     "invalid_expiry_date"), "expired"),
    # details typed wrong
    **dict.fromkeys(("incorrect_cvc", "invalid_cvc", "incorrect_number", "invalid_number", "incorrect_zip",
                     "incorrect_pin", "invalid_pin", "cvc declined", "invalid card number", "invalid pin",
                     "pin tries exceeded", "avs declined", "pin_try_exceeded"), "details"),
    # the bank's confirmation (3-D Secure, the banking app) did not happen or failed
    **dict.fromkeys(("authentication_required", "payment_intent_authentication_failure", "3d not authenticated",
                     "3ds authentication error", "authentication required", "card requires online pin",
                     "online pin required", "mobile pin required", "offline_pin_required",
                     "online_or_offline_pin_required"),
                    "authentication"),
    # a card or method that cannot pay this
    **dict.fromkeys(("card_not_supported", "currency_not_supported", "transaction_not_allowed", "not_permitted",
                     "service_not_allowed", "not supported", "transaction not permitted", "restricted card",
                     "restricted_card", "blocked card"), "not_supported"),
    # the bank or network could not answer now
    **dict.fromkeys(("processing_error", "issuer_not_available", "try_again_later", "reenter_transaction",
                     "issuer unavailable", "acquirer error", "not submitted", "rreq not received from ds"),
                    "try_later"),
}


def decline_kind(reason: str | None) -> str:
    """The kind of a provider's failure reason: funds, limit, expired, details, authentication,
    not_supported, try_later, or declined (anything else, and no reason at all)."""
    return REASONS.get((reason or "").strip().lower(), "declined")


def decline_words(reason: str | None) -> str:
    """What the customer is told about a failed payment, in the current locale."""
    kind = decline_kind(reason)
    if kind == "funds":
        return _("Your bank declined the payment: there is not enough money on the card or account.")
    if kind == "limit":
        return _("The payment is above a limit on your card or account. Try another card or another way to pay.")
    if kind == "expired":
        return _("The card has expired, or its expiry date was not entered correctly.")
    if kind == "details":
        return _("Some card details were not right (the card number, security code or PIN). Please check them "
                 "and try again.")
    if kind == "authentication":
        return _("The payment was not confirmed with your bank (in your banking app or with a code). Please try "
                 "again and confirm it when asked.")
    if kind == "not_supported":
        return _("This card or payment method cannot be used for this payment. Please choose another way to pay.")
    if kind == "try_later":
        return _("Your bank could not be reached just now. Please try again in a few minutes.")
    return _("Your bank or card issuer declined the payment without giving us a reason. They can tell you why; "
             "or choose another way to pay.")
