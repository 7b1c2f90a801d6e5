"""Request bodies of the API besides the invoice (which is app/billing/schemas.py InvoiceIn). Reading a
JSON body, with clear answers for what is not JSON, is `app.apikit.reading`'s."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from app.billing.models import REMINDER_CHANNELS
from app.billing.schemas import ConsentsIn
from app.links.models import CHANNELS
from app.links.services import MAX_TTL_DAYS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LinkIn(_Strict):
    channel: Literal[CHANNELS] = Field(description="How the link will reach the customer")  # type: ignore[valid-type]
    ttl_days: Annotated[StrictInt, Field(ge=1, le=MAX_TTL_DAYS)] | None = Field(
        None, description="Days until the link expires; the server's default (LINK_DEFAULT_TTL_DAYS) when left out"
    )


class ReminderIn(_Strict):
    channel: Literal[REMINDER_CHANNELS] = Field(description="How the reminder reached the customer")  # type: ignore[valid-type]
    sent_at: AwareDatetime | None = Field(None, description="When it was sent, with its offset; now when left out")
    final: StrictBool = Field(False, description="The last reminder before the bill may go to debt collection")
    id: str | None = Field(None, min_length=1, max_length=64,
                           description="Your own id of the reminder: the same id again records nothing new")


class CancelIn(_Strict):
    reason: str | None = Field(None, max_length=500, description="Kept on the invoice's timeline")


class CreditLineIn(_Strict):
    position: Annotated[StrictInt, Field(ge=1)] = Field(description="The invoice line's position (from 1)")
    amount: Annotated[StrictInt, Field(ge=1)] = Field(
        description="What to credit of the line, gross, minor units (at most what is left of it)")


class CreditNoteIn(_Strict):
    """A credit note: money taken off an issued invoice (the invoice itself never changes)."""

    reason: str = Field(min_length=1, max_length=300, description="Why: printed on the note and shown to the customer")
    lines: list[CreditLineIn] | None = Field(
        None, min_length=1, max_length=1000,
        description="What to credit, line by line; everything still open to a credit when left out")
    id: str | None = Field(None, min_length=1, max_length=64,
                           description="Your own id of the credit note: the same id again issues nothing new")


class ContactAddressIn(_Strict):
    line1: str | None = Field(None, max_length=200)
    line2: str | None = Field(None, max_length=200)
    postcode: str | None = Field(None, max_length=16, description="In the country's form (0150, 04229, D02 HW77)")
    city: str | None = Field(None, max_length=100)
    country: str | None = Field(None, max_length=2, description="ISO 3166 code: NO, DE, IE")


class ContactIn(_Strict):
    """A customer's contact points and preferences for the reminders the portal sends. Only the fields
    given change; null clears one (an address or a number no longer valid)."""

    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32, description="A mobile number in E.164: +4791234567")
    address: ContactAddressIn | None = Field(None, description="The postal address letters go to")
    preferred_channel: Literal["sms", "email", "letter"] | None = Field(
        None, description="The channel the customer prefers, where a step offers it")
    preferred_locale: str | None = Field(None, max_length=8, description="en, nb or de")
    time_zone: str | None = Field(None, max_length=40, description="IANA time zone for quiet hours: Europe/Oslo")
    consents: ConsentsIn | None = Field(None, description="What the customer agreed to (letters are always allowed)")


class InvoiceDunningIn(_Strict):
    """How the portal reminds one invoice: by which of your plans, or not at all."""

    plan: str | None = Field(None, min_length=1, max_length=80, description="The name of one of your dunning plans")
    version: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="The plan's version (with plan); its latest when left out")
    excluded: StrictBool | None = Field(None, description="true: no reminders for this invoice; false: again")


class CustomerDunningIn(_Strict):
    excluded: StrictBool = Field(description="true: no reminders for any of the customer's bills; false: again")


class BlockTextIn(_Strict):
    title: str = Field(min_length=1, max_length=120, description="Plain text")
    body: str = Field("", max_length=2000, description="Markdown subset: **bold**, *italic*, lists, https links")
    cta: str = Field("", max_length=40, description="The button's words (needed with an action)")


class TargetingIn(_Strict):
    countries: list[str] = Field(default_factory=list, max_length=50, description="ISO 3166 codes, such as NO")
    languages: list[Literal["en", "nb", "de"]] = Field(default_factory=list)
    statuses: list[Literal["not_due", "due_soon", "overdue", "paid", "plan"]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, max_length=50, description="Any of the customer's tags")
    product_codes: list[str] = Field(default_factory=list, max_length=50, description="Any line's product code")
    channels: list[Literal["sms", "email", "letter", "api"]] = Field(
        default_factory=list, description="The channel of the link the customer came by (e-mails: email)")
    amount_min: Annotated[StrictInt, Field(ge=0)] | None = Field(None, description="Minor units")
    amount_max: Annotated[StrictInt, Field(ge=0)] | None = Field(None, description="Minor units")
    bills_min: Annotated[StrictInt, Field(ge=0)] | None = None
    bills_max: Annotated[StrictInt, Field(ge=0)] | None = None


class BlockIn(_Strict):
    """A content block (docs/content.md): what the bill page, the receipt or reminder e-mails say."""

    name: str = Field(min_length=1, max_length=100, description="Yours; customers never see it")
    kind: Literal["information", "engagement", "offer"]
    placements: list[Literal["bill", "receipt", "email"]] = Field(min_length=1)
    priority: Annotated[StrictInt, Field(ge=-1000, le=1000)] = 0
    starts_on: date | None = None
    ends_on: date | None = None
    action: Literal["none", "link", "interest"] = "none"
    target_url: str | None = Field(None, max_length=500, description="https only; with action link")
    cap_days: Annotated[StrictInt, Field(ge=1, le=365)] | None = Field(
        None, description="Shown to one customer on at most this many days")
    targeting: TargetingIn = Field(default_factory=lambda: TargetingIn.model_validate({}))
    texts: dict[Literal["en", "nb", "de"], BlockTextIn] = Field(min_length=1, description="Per language")


class TagsIn(_Strict):
    tags: list[str] = Field(max_length=20, description="The customer's tags, replacing those before")
