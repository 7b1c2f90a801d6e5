"""JSON error answers of the API: one shape, `{"error": code, "message": text, ...}`; nothing is written.

Every handler rolls the session back, so a request that fails leaves the database as it was.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import Conflict, IllegalTransition, InvalidData
from app.extensions import db


class ApiError(Exception):
    """An error answer with its status, machine-readable code, message and extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **extra: object) -> Response:
    """Roll back whatever the request did and answer with the JSON error shape."""
    db.session.rollback()
    response = jsonify(error=code, message=message, **extra)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def _invalid(exc: InvalidData) -> Response:
    return error_response(422, "validation_failed", "Some fields are invalid; see errors.", errors=exc.errors)


def _conflict(exc: Conflict) -> Response:
    return error_response(409, "conflict", str(exc))


def _illegal_transition(exc: IllegalTransition) -> Response:
    return error_response(409, "illegal_transition", str(exc))


def _too_large(_exc: RequestEntityTooLarge) -> Response:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return error_response(413, "payload_too_large", f"The request body is larger than the limit of {limit} bytes.")


def register_error_handlers(bp: Blueprint) -> None:
    """Answer the domain errors of the services, and our own, as JSON on the API's routes."""
    bp.register_error_handler(ApiError, _api_error)
    bp.register_error_handler(InvalidData, _invalid)
    bp.register_error_handler(Conflict, _conflict)
    bp.register_error_handler(IllegalTransition, _illegal_transition)
    bp.register_error_handler(RequestEntityTooLarge, _too_large)
