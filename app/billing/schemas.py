"""The invoice import schema, shared by the creditor API and `flask invoices import`.

Amounts are integer minor units; VAT rates are basis points (2500 = 25 %); unit prices are
net of VAT. Every problem is collected and reported by field path.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from app.billing.models import CUSTOMER_KINDS, LINE_KINDS, InvoiceKind
from app.billing.texts import check_texts, text_schema
from app.core.orgnumbers import org_number, vat_id
from app.core.validation import E164, is_email
from app.creditors.references import is_valid_reference
from app.errors import InvalidData
from app.i18n import normalise_locale
from app.money import is_current_currency, round_half_up

MAX_AMOUNT = 10**13
#: Fields added after invoices were first imported: the payload's hash leaves them out when not given.
LATER_INVOICE_FIELDS = ("dunning_plan", "dunning_excluded")
LATER_CUSTOMER_FIELDS = ("preferred_channel", "time_zone", "consents", "org_number", "vat_id")
Amount = Annotated[StrictInt, Field(ge=0, lt=MAX_AMOUNT)]


def _period_end_after_start(cls, end: date | None, info: ValidationInfo) -> date | None:
    """Shared by invoices and lines (used as a pydantic field validator)."""
    start = info.data.get("period_start")
    if end and start and end < start:
        raise ValueError("period_end is before period_start")
    return end


INVOICE_KINDS = InvoiceKind.values()

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(_Strict):
    line1: str | None = Field(None, max_length=200)
    line2: str | None = Field(None, max_length=200)
    postcode: str | None = Field(None, max_length=16)
    city: str | None = Field(None, max_length=100)
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")


class ConsentsIn(_Strict):
    """What the customer agreed to, for the reminders the portal sends (letters are always allowed)."""

    email: StrictBool | None = Field(None, description="Reminders by e-mail")
    sms: StrictBool | None = Field(None, description="Reminders by SMS")
    electronic_notices: StrictBool | None = Field(
        None, description="Legally required notices (Norway's inkassovarsel) electronically rather than by letter")


class CustomerIn(_Strict):
    external_ref: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    kind: Literal[CUSTOMER_KINDS] = "consumer"  # type: ignore[valid-type]
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, description="E.164, e.g. +4791234567")
    address: AddressIn | None = None
    preferred_locale: str | None = Field(None, description="en, nb or de")
    date_of_birth: date | None = None
    # For the reminders the portal sends (app.dunning); left out: unchanged.
    preferred_channel: Literal["sms", "email", "letter", ""] | None = Field(
        None, description="The channel the customer prefers for reminders (\"\" clears it); left out: unchanged")
    time_zone: str | None = Field(None, max_length=40,
                                  description="IANA time zone for quiet hours (Europe/Oslo); left out: the country's")
    consents: ConsentsIn | None = Field(None, description="What the customer agreed to; left out: unchanged")
    org_number: str | None = Field(
        None, max_length=60,
        description="A business's organisation number, checked for the address's country (else the creditor's): "
                    "Norway nine digits with their MOD11 check digit; Germany the VAT id (DE + nine digits) or the "
                    "commercial register number (HRB 12345); Ireland the CRO or VAT number. Stored in its normal form")

    vat_id: str | None = Field(
        None, max_length=60,
        description="A business's VAT id, printed on its invoices: with its country prefix (else the address's "
                    "country's, else the creditor's) and checked by that country's format and check digits "
                    "(DE136695976, NO923609016MVA, IE6388047V). Stored compact")

    @field_validator("vat_id")
    @classmethod
    def _vat_id(cls, v, info: ValidationInfo):
        if not v:
            return None
        if info.data.get("kind") != "business":
            raise ValueError("only a business has a VAT id on its invoices (kind: business)")
        address = info.data.get("address")
        country = (address.country if address is not None else None) or (info.context or {}).get("country")
        return vat_id(country, v)

    @field_validator("org_number")
    @classmethod
    def _org_number(cls, v, info: ValidationInfo):
        if not v:
            return None
        if info.data.get("kind") != "business":
            raise ValueError("only a business has an organisation number (kind: business)")
        address = info.data.get("address")
        country = (address.country if address is not None else None) or (info.context or {}).get("country")
        return org_number(country, v)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v):
        if v:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("not a time zone name (Europe/Oslo)") from None
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v):
        if v and not is_email(v):
            raise ValueError("not an e-mail address")
        return v or None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v):
        if v and not E164.fullmatch(v):
            raise ValueError("not an E.164 phone number (e.g. +4791234567)")
        return v or None

    @field_validator("preferred_locale")
    @classmethod
    def _locale(cls, v):
        if v is None:
            return None
        found = normalise_locale(v)
        if not found:
            raise ValueError("one of en, nb, de")
        return found


def Texts(most: int):
    """A creditor text: a string, or an object of language -> string (`billing.texts.check_texts`)."""
    return Annotated[str | dict[str, str], PlainValidator(lambda v: check_texts(v, most=most)),
                     WithJsonSchema(text_schema(most))]


class LineIn(_Strict):
    kind: Literal[LINE_KINDS] = "product"  # type: ignore[valid-type]
    description: Texts(300)  # type: ignore[valid-type]
    note: Texts(500) | None = Field(  # type: ignore[valid-type]
        None, description="Plain-words explanation shown to the customer")
    quantity: Decimal = Field(default=Decimal(1), gt=0, lt=Decimal(10**9), decimal_places=3)
    unit: str | None = Field(None, max_length=16)
    product_code: str | None = Field(None, max_length=40, pattern=r"^[A-Za-z0-9_.:-]{1,40}$",
                                     description="The creditor's own code of the product: content blocks "
                                                 "may target bills by it (docs/content.md)")
    unit_price: Amount
    vat_rate: Annotated[StrictInt, Field(ge=0, le=10000)] = 0
    period_start: date | None = None
    period_end: date | None = None
    net: Amount | None = None
    vat: Amount | None = None
    gross: Amount | None = None

    def computed(self) -> tuple[int, int, int]:
        return line_amounts(self.quantity, self.unit_price, self.vat_rate)

    _period = field_validator("period_end")(_period_end_after_start)

    @field_validator("net", "vat", "gross")
    @classmethod
    def _amounts(cls, v, info: ValidationInfo):
        d = info.data
        if v is None or not all(k in d for k in ("quantity", "unit_price", "vat_rate")):
            return v
        amounts = line_amounts(d["quantity"], d["unit_price"], d["vat_rate"])
        expected = dict(zip(("net", "vat", "gross"), amounts, strict=True))
        field = info.field_name or ""  # pydantic names the field a field validator runs for
        if v != expected[field]:
            raise ValueError(f"{field} is {v} but quantity × unit_price and vat_rate give {expected[field]}")
        return v


def line_amounts(quantity: Decimal, unit_price: int, vat_rate: int) -> tuple[int, int, int]:
    """(net, vat, gross) of a line: net rounded half up, VAT on the rounded net."""
    net = round_half_up(quantity * unit_price)
    vat = round_half_up(Decimal(net) * vat_rate / 10000)
    return net, vat, net + vat


#: An invoice number: letters, digits and . _ / -, a letter or digit first and after every "/", so that
#: as a path (/api/v1/invoices/<number>) it has no empty, "." or ".." part that a client or proxy
#: would fold away (a/../b is b on the way), and no "/" at the end.
INVOICE_NUMBER = r"^[0-9A-Za-z][0-9A-Za-z._-]*(?:/[0-9A-Za-z][0-9A-Za-z._-]*)*$"
INVOICE_NUMBER_RULE = ("1-64 letters, digits and . _ / -, starting with a letter or digit; each / is followed by a "
                       "letter or digit (2026/10/7, not a/../b, a//b or a/)")


class InvoiceIn(_Strict):
    number: str = Field(min_length=1, max_length=64, description=INVOICE_NUMBER_RULE,
                        json_schema_extra={"pattern": INVOICE_NUMBER})
    issue_date: date
    due_date: date
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$",
                          description="ISO 4217 code of a currency in use today (upper case): NOK, EUR, SEK...")
    summary: Texts(300) | None = None  # type: ignore[valid-type]
    kind: Literal[INVOICE_KINDS] = Field(  # type: ignore[valid-type]
        "standard", description="standard: an ordinary bill; on_account: a regular on-account payment settled by a "
                                "later statement; prepayment: paid before the service. On-account payments and "
                                "prepayments are never offered instalment plans.")
    period_start: date | None = None
    period_end: date | None = None
    payment_reference: str | None = Field(None, max_length=35)
    customer: CustomerIn
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    subtotal: Amount | None = None
    vat_total: Amount | None = None
    total: Amount
    # The portal's reminders (app.dunning): the creditor's plan to remind this invoice by (its name;
    # left out: the default plan), or the invoice kept out of them.
    dunning_plan: str | None = Field(None, min_length=1, max_length=80,
                                     description="The name of your dunning plan for this invoice (its latest "
                                                 "version); left out: your default plan")
    dunning_excluded: StrictBool | None = Field(None, description="true: the portal sends this invoice no reminders")

    @field_validator("number")
    @classmethod
    def _number(cls, v):
        if not re.fullmatch(INVOICE_NUMBER, v):
            raise ValueError("letters, digits and . _ / -, a letter or digit first and after every /")
        return v

    @field_validator("currency")
    @classmethod
    def _currency(cls, v):
        if not is_current_currency(v):
            raise ValueError("unknown ISO 4217 currency")
        return v

    @field_validator("payment_reference")
    @classmethod
    def _reference(cls, v, info: ValidationInfo):
        scheme = (info.context or {}).get("reference_scheme")
        if v and scheme and not is_valid_reference(scheme, v.replace(" ", "")):
            raise ValueError(f"not a valid {scheme} reference (check digits)")
        return v.replace(" ", "") if v else None

    @field_validator("issue_date")
    @classmethod
    def _issued(cls, v, info: ValidationInfo):
        today = (info.context or {}).get("today")
        if today is not None and v > today:
            raise ValueError(f"issue_date is in the future (today is {today.isoformat()} where the creditor is)")
        return v

    @field_validator("due_date")
    @classmethod
    def _due(cls, v, info: ValidationInfo):
        issued = info.data.get("issue_date")
        if issued and v < issued:
            raise ValueError("due_date is before issue_date")
        return v

    _period = field_validator("period_end")(_period_end_after_start)

    @field_validator("subtotal", "vat_total", "total")
    @classmethod
    def _sums(cls, v, info: ValidationInfo):
        lines = info.data.get("lines")
        if v is None or not lines:
            return v
        index = {"subtotal": 0, "vat_total": 1, "total": 2}[info.field_name or ""]
        expected = sum(line.computed()[index] for line in lines)
        if v != expected:
            raise ValueError(f"{info.field_name} is {v} but the lines add up to {expected}")
        return v


def validation_errors(exc: ValidationError) -> InvalidData:
    """Turn pydantic's errors into InvalidData: the first problem of each field, by dotted path."""
    errors: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "body"
        errors.setdefault(path, err["msg"].removeprefix("Value error, "))
    return InvalidData(errors)


def parse_invoice(payload, reference_scheme: str | None = None, country: str | None = None,
                  today: date | None = None) -> InvoiceIn:
    """Validate a decoded JSON payload; InvalidData lists every problem by field path. `today`: the
    creditor's day (an issue date after it is refused)."""
    if not isinstance(payload, dict):
        raise InvalidData({"body": "a JSON object is expected"})
    try:
        return InvoiceIn.model_validate(
            payload, context={"reference_scheme": reference_scheme, "country": country, "today": today})
    except ValidationError as exc:
        raise validation_errors(exc) from None
