"""No log line shows a secret token: a signed link's (/l/<token>) or a case file's PDF address
(/collection/cases/<token>/invoice.pdf), in a message, its arguments or an exception's text,
whichever logger writes it; and a real gunicorn's access log."""

from __future__ import annotations

import io
import logging

import pytest

from app.security import install_log_redaction, redact_tokens
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import issue
from tests.support.gunicorn import Gunicorn

LINK_TOKEN = "AbC123.dEf456-ghI789_jkL"
PDF_TOKEN = "cAsE42.sIgNaTuRe-0123_xyz"


def handler_output(logger_name: str, emit) -> str:
    """What a plain handler on `logger_name` writes while `emit(logger)` logs (with a traceback's text)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return stream.getvalue()


@pytest.mark.parametrize("name", ["app.errors", "app.portal.views.bill", "urllib3.connectionpool", "gunicorn.error",
                                  "some.library"])
def test_every_logger_is_redacted(app, name):
    install_log_redaction()  # what create_app does (again: it is idempotent)

    def emit(logger):
        logger.info("GET /l/%s HTTP/1.1", LINK_TOKEN)
        address = f"GET https://pay.example.test/collection/cases/{PDF_TOKEN}/invoice.pdf"
        logger.info(address)  # a message with the token in it, no args
        logger.info("%(r)s %(f)s", {"r": f"GET /l/{LINK_TOKEN}?lang=nb", "f": f"https://x.test/l/{LINK_TOKEN}"})
        try:
            raise ValueError(f"cannot open /collection/cases/{PDF_TOKEN}/invoice.pdf nor /l/{LINK_TOKEN}")
        except ValueError:
            logger.exception("failed on %s", f"/l/{LINK_TOKEN}")

    output = handler_output(name, emit)
    assert LINK_TOKEN not in output and PDF_TOKEN not in output, output
    assert output.count("/l/[redacted]") >= 5 and output.count("/collection/cases/[redacted]/invoice.pdf") >= 2
    assert "ValueError: cannot open" in output  # the traceback stays, without the tokens


def test_redaction_leaves_other_text_alone():
    text = "GET /b/Xy12/contact?x=/l HTTP/1.1 200 /api/partner/v1/cases/CASE-1/ack"
    assert redact_tokens(text) is text
    assert redact_tokens('"GET /l/abc.def HTTP/1.1" 303 "-"') == '"GET /l/[redacted] HTTP/1.1" 303 "-"'


def test_an_unhandled_error_on_a_link_is_logged_without_its_token(client, app, session, caplog, monkeypatch):
    """errors.py logs 'unhandled error on GET /l/<token>' with the traceback: neither shows the token."""
    issued = issue(app, make_invoice(make_creditor("NO")))

    def broken(token, **_kw):
        raise RuntimeError(f"the database went away while reading /l/{token}")

    monkeypatch.setattr("app.portal.views.bill.resolve_token", broken)
    caplog.set_level(logging.INFO)
    assert client.get(f"/l/{issued.token}").status_code == 500
    assert "unhandled error on GET /l/[redacted]" in caplog.text
    assert "RuntimeError: the database went away" in caplog.text
    assert issued.token not in caplog.text
    for record in caplog.records:
        assert issued.token not in record.getMessage()


def test_gunicorns_access_log_shows_no_token(tmp_path):
    """A real gunicorn with its access log: the request line, the path and the Referer, for both kinds of token."""
    access_log = tmp_path / "access.log"
    env = {"PORTAL_ENV": "testing", "PORTAL_INSTANCE_PATH": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path}/portal.db", "LOG_LEVEL": "INFO"}
    with Gunicorn(env, access_log=access_log, workers=1) as server:
        referer = {"Referer": f"https://pay.example.test/l/{LINK_TOKEN}"}
        assert server.get(f"/l/{LINK_TOKEN}?lang=nb", headers=referer)[0] == 404
        assert server.get(f"/collection/cases/{PDF_TOKEN}/invoice.pdf", headers=referer)[0] == 404
        server.stop()  # gunicorn's log is flushed
        lines = [line for line in access_log.read_text().splitlines() if "/healthz" not in line]  # waiting for it
        output = server.output()
    assert len(lines) == 2, lines
    assert "GET /l/[redacted]?lang=nb HTTP/1.1" in lines[0] and '"https://pay.example.test/l/[redacted]"' in lines[0]
    assert "GET /collection/cases/[redacted]/invoice.pdf HTTP/1.1" in lines[1]
    assert LINK_TOKEN not in access_log.read_text() + output and PDF_TOKEN not in access_log.read_text() + output
