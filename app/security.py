"""Response headers (CSP with nonces, HSTS, nosniff, referrer policy, no-store) and log redaction."""

from __future__ import annotations

import logging
import re
import secrets

from flask import Flask, g, request

LINK_PATH = re.compile(r"/l/[^\s?\"'/]+")


def csp_nonce() -> str:
    nonce = getattr(g, "csp_nonce", None)
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


class RedactLinkTokens(logging.Filter):
    """Replace signed link tokens in log lines (`/l/<token>` -> `/l/[redacted]`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/l/" in message:
            record.msg, record.args = LINK_PATH.sub("/l/[redacted]", message), None
        return True


def install_log_redaction() -> None:
    redactor = RedactLinkTokens()
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "app", ""):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactLinkTokens) for f in logger.filters):
            logger.addFilter(redactor)


def init_security(app: Flask) -> None:
    hsts = app.config["HSTS_ENABLED"]

    @app.after_request
    def set_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=(self)"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if hsts and (request.is_secure or app.config["PREFERRED_URL_SCHEME"] == "https"):
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if getattr(g, "no_store", False):
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response

    app.jinja_env.globals["csp_nonce"] = csp_nonce
    install_log_redaction()
