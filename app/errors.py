"""Domain errors, error pages (translated HTML) and JSON errors for the API. Rollback on 500."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db

log = logging.getLogger(__name__)


class InvalidData(ValueError):
    """Input failed validation. `errors` maps a field path ('lines.2.vat_rate') to its problem."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Conflict(Exception):
    """The request contradicts what is stored (e.g. the same invoice number with other content)."""


class IllegalTransition(Exception):
    """An invoice state change that the state machine does not allow."""


def _wants_json() -> bool:
    if request.path.startswith("/api/"):
        g.no_store = True
        return True
    return False


def _headers_of(exc: HTTPException) -> list[tuple[str, str]]:
    """The headers the exception itself carries (405's Allow, 429's Retry-After, 401's
    WWW-Authenticate), without its Content-Type: the page or JSON made here has its own."""
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        if _wants_json():
            return jsonify(error="csrf_failed", message=exc.description), 400
        return render_template("errors/error.html", code=400, kind="csrf"), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code and exc.code >= 500:
            db.session.rollback()
        if _wants_json():
            body = {"error": (exc.name or "error").lower().replace(" ", "_"), "message": exc.description}
            return jsonify(body), exc.code, _headers_of(exc)
        kind = {403: "forbidden", 404: "not_found", 405: "not_allowed", 413: "too_large", 429: "too_many"}.get(
            exc.code or 0, "generic")
        return render_template("errors/error.html", code=exc.code, kind=kind), exc.code, _headers_of(exc)

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        db.session.rollback()
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        if _wants_json():
            return jsonify(error="internal_error", message="Something went wrong on our side."), 500
        return render_template("errors/error.html", code=500, kind="generic"), 500
