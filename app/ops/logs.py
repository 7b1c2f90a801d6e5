"""Logs: one JSON object per line in production, link tokens redacted from every line.

`configure_logging` puts the redaction (`security.RedactLinkTokens`) on the root logger's handlers,
where every logger's records end up (a filter on a logger sees only that logger's own records, not its
children's), and, with LOG_FORMAT=json, formats each record as one JSON object: time (UTC), level,
logger, message, request_id when the record was logged during a request that had one, and the
traceback when there is one. gunicorn's own loggers (its access log among them) do not reach the root
logger: deploy/gunicorn.conf.py gives them the same formatter and filter (`JsonGunicornLogger`)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

from app.security import RedactLinkTokens

#: A request id from the proxy (nginx's $request_id: 32 hex digits), or our own; anything else is not trusted.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
REQUEST_ID_HEADER = "X-Request-ID"


def request_id() -> str | None:
    """This request's id: the proxy's X-Request-ID when it looks like one, else one of our own, made
    once per request when something asks for it (a log line). None outside a request."""
    from flask import g, has_request_context, request

    if not has_request_context():
        return None
    found = g.get("request_id")
    if found is None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        found = g.request_id = given if REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
    return found


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on each record logged during a request (unless the record has one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (if any), exception (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # a traceback that held a token: redacted to text when the record was made
            entry["exception"] = record.exc_text
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def prepare_handler(handler: logging.Handler, json_lines: bool) -> logging.Handler:
    """The redaction (first) and request ids on a handler, and the JSON format if asked."""
    if not any(isinstance(f, RedactLinkTokens) for f in handler.filters):
        handler.filters.insert(0, RedactLinkTokens())
    if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
        handler.addFilter(RequestIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    return handler


def configure_logging(config) -> None:
    """The root logger's level, a handler to stderr if it has none, and on each of its handlers the
    redaction, the request id and (LOG_FORMAT=json) the JSON format. Safe to call again (create_app
    may run more than once in a process)."""
    root = logging.getLogger()
    root.setLevel(config["LOG_LEVEL"])
    json_lines = config["LOG_FORMAT"] == "json"
    if not root.handlers:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
        root.addHandler(stream)
    for handler in root.handlers:
        prepare_handler(handler, json_lines)
