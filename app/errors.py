"""Domain errors, error pages (translated HTML) and JSON errors for the API. Rollback on 500.

A database that does not answer (down, restarting, unreachable) is a 503 with Retry-After, never a
500: the translated "try again in a moment" page, or `{"error": "unavailable"}` for the APIs and the
providers' webhooks; logged as a warning with the driver's one-line reason, without a traceback."""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError
from sqlalchemy.exc import OperationalError as SAOperationalError
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


#: SQLite's words for a database it cannot use now (locked by a writer, file gone); other SQLite
#: "operational" errors (no such table...) are bugs, and stay 500s.
SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")
RETRY_AFTER_SECONDS = 5


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or used right now, rather than that a query is
    wrong: a lost or refused connection, a server shutting down or starting up (psycopg's
    OperationalError), SQLite's lock and file errors. Raised through SQLAlchemy or straight from the
    driver (the hot reads of app/readpath.py run on the driver's connection)."""
    if isinstance(exc, DisconnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
        if isinstance(exc, InterfaceError):
            return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a requirement
        psycopg = None
    if psycopg is not None and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return any(words in str(exc).lower() for words in SQLITE_UNAVAILABLE)
    return False


def _unavailable_response(exc: BaseException):
    with contextlib.suppress(Exception):  # the connection is gone: nothing to roll back
        db.session.rollback()
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.path, type(exc).__name__,
                reason[0] if reason else "")
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if _wants_json() or request.path.startswith("/webhooks/"):
        g.no_store = True
        return jsonify(error="unavailable", message="The service is unavailable for a moment; try again."), 503, \
            headers
    g.no_store = True
    return render_template("errors/error.html", code=503, kind="unavailable"), 503, headers


def close_session_quietly(_exc: BaseException | None = None) -> None:
    """The request's session, closed at the end of the app context before Flask-SQLAlchemy's own
    teardown (registered later, so run first). Closing rolls back; on a connection the server has just
    dropped (a restart) the rollback fails, and an exception out of a teardown would reach gunicorn as a
    bare 500 after the answer was made. Such a session is invalidated (its connections thrown away, not
    rolled back) and forgotten; any other failure is raised as before."""
    try:
        db.session.remove()
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("closing the session after the database went away: %s", type(exc).__name__)
        with contextlib.suppress(Exception):
            db.session.invalidate()
        db.session.registry.clear()


def register_error_handlers(app: Flask) -> None:
    app.teardown_appcontext(close_session_quietly)

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
            return jsonify(body), exc.code
        kind = {403: "forbidden", 404: "not_found", 405: "not_allowed", 413: "too_large", 429: "too_many"}.get(
            exc.code, "generic")
        headers = {"Retry-After": str(exc.retry_after)} if getattr(exc, "retry_after", None) else {}
        return render_template("errors/error.html", code=exc.code, kind=kind), exc.code, headers

    @app.errorhandler(SAOperationalError)
    @app.errorhandler(DBAPIError)
    @app.errorhandler(DisconnectionError)
    def database_error(exc: Exception):
        if database_unavailable(exc):
            return _unavailable_response(exc)
        return unhandled(exc)

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        if database_unavailable(exc):  # straight from the driver (app/readpath.py)
            return _unavailable_response(exc)
        db.session.rollback()
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        if _wants_json():
            return jsonify(error="internal_error", message="Something went wrong on our side."), 500
        return render_template("errors/error.html", code=500, kind="generic"), 500
