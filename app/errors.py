"""Domain errors, error pages (translated HTML) and JSON errors for the API. Rollback on 500."""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from app.extensions import db

log = logging.getLogger(__name__)


SQLITE_BUSY = 5


def database_busy(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "database is locked" (SQLITE_BUSY and its extended codes), from the
    driver or wrapped by SQLAlchemy."""
    code = getattr(getattr(exc, "orig", exc), "sqlite_errorcode", None)
    return code is not None and code & 0xFF == SQLITE_BUSY


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

    @app.errorhandler(OperationalError)
    @app.errorhandler(sqlite3.OperationalError)  # a BEGIN IMMEDIATE, sent straight to the driver
    def database_error(exc: Exception):
        if not database_busy(exc):
            return unhandled(exc)
        # SQLite's write lock was not free within the busy timeout: nothing was written (rolled
        # back), and the client may simply try again.
        db.session.rollback()
        log.warning("database busy on %s %s: answered 503", request.method, request.path)
        headers = {"Retry-After": "2"}
        if _wants_json():
            return jsonify(error="busy", message="The service is busy; try again in a moment."), 503, headers
        return render_template("errors/error.html", code=503, kind="generic"), 503, headers

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        db.session.rollback()
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        if _wants_json():
            return jsonify(error="internal_error", message="Something went wrong on our side."), 500
        return render_template("errors/error.html", code=500, kind="generic"), 500
