"""What a JSON API reads of a request: the bearer key, the JSON body with clear answers for what is
not JSON, and a body validated against its model."""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest

from app.apikit.errors import ApiError
from app.billing.schemas import validation_errors
from app.errors import InvalidData

Model = TypeVar("Model", bound=BaseModel)


def bearer_key() -> str | None:
    """The key of an `Authorization: Bearer <key>` header, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


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
