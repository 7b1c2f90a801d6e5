"""Domain errors, error pages (translated HTML) and JSON errors for the API. Rollback on 500.

A database that does not answer (down, restarting, unreachable) is a 503 with Retry-After, never a
500: the translated "try again in a moment" page, or `{"error": "unavailable"}` for the APIs and the
providers' webhooks; logged as a warning with the driver's one-line reason, without a traceback.
SQLite's write lock not freed within the busy timeout is a 503 too ("busy")."""

from __future__ import annotations

import contextlib
import logging
import sqlite3

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
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
    import psycopg

    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
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
            db.session().invalidate()
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
            return jsonify(body), exc.code, _headers_of(exc)
        kind = {403: "forbidden", 404: "not_found", 405: "not_allowed", 413: "too_large", 429: "too_many"}.get(
            exc.code or 0, "generic")
        return render_template("errors/error.html", code=exc.code, kind=kind), exc.code, _headers_of(exc)

    @app.errorhandler(OperationalError)
    @app.errorhandler(sqlite3.OperationalError)  # a BEGIN IMMEDIATE, sent straight to the driver
    @app.errorhandler(DBAPIError)
    @app.errorhandler(DisconnectionError)
    def database_error(exc: Exception):
        if not database_busy(exc):
            if database_unavailable(exc):
                return _unavailable_response(exc)
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
        if database_unavailable(exc):  # straight from the driver (app/readpath.py)
            return _unavailable_response(exc)
        db.session.rollback()
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        if _wants_json():
            return jsonify(error="internal_error", message="Something went wrong on our side."), 500
        return render_template("errors/error.html", code=500, kind="generic"), 500
