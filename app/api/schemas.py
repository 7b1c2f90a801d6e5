"""Request bodies of the API besides the invoice (which is app/billing/schemas.py InvoiceIn),
and reading a JSON body with clear answers for what is not JSON."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from flask import request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from werkzeug.exceptions import BadRequest

from app.api.errors import ApiError
from app.billing.models import REMINDER_CHANNELS
from app.billing.schemas import validation_errors
from app.errors import InvalidData
from app.links.models import CHANNELS
from app.links.services import MAX_TTL_DAYS

Model = TypeVar("Model", bound=BaseModel)


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


def read_json(*, optional: bool = False):
    """The decoded JSON body. 415 unless the Content-Type is JSON, 400 when it does not parse.
    With `optional`, an empty body reads as {}."""
    if optional and not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send a JSON body with 'Content-Type: application/json'.")
    try:
        data = request.get_json()
    except (BadRequest, RecursionError):
        raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
    if _holds_nul(data):
        raise ApiError(400, "invalid_json", "The body holds a NUL character (\\u0000), which no field takes.")
    return data


def _holds_nul(value) -> bool:
    """Whether a NUL character is in any key or string of decoded JSON (PostgreSQL's text cannot hold one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_body(model: type[Model], payload) -> Model:
    """Validate a decoded body against `model`; InvalidData lists every problem by field path."""
    if not isinstance(payload, dict):
        raise InvalidData({"body": "a JSON object is expected"})
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_errors(exc) from None
