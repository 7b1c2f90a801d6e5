import logging

import pytest

from app.config import ConfigError, load_config, normalise_database_url
from app.security import RedactLinkTokens

STRONG = "s" * 40


def test_production_requires_secrets(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path), {"PORTAL_ENV": "production"})
    with pytest.raises(ConfigError, match="LINK_SIGNING_KEYS"):
        load_config(str(tmp_path), {"PORTAL_ENV": "production", "SECRET_KEY": STRONG})
    with pytest.raises(ConfigError, match="at least 32"):
        load_config(str(tmp_path), {"PORTAL_ENV": "production", "SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="https"):
        load_config(str(tmp_path), {"PORTAL_ENV": "production", "SECRET_KEY": STRONG, "LINK_SIGNING_KEYS": STRONG,
                                    "PORTAL_BASE_URL": "http://pay.example.com"})


def test_production_settings(tmp_path):
    cfg = load_config(str(tmp_path), {"PORTAL_ENV": "production", "SECRET_KEY": STRONG,
                                      "LINK_SIGNING_KEYS": f"{'n' * 40}, {'o' * 40}",
                                      "PORTAL_BASE_URL": "https://pay.example.com/"})
    assert cfg["SESSION_COOKIE_SECURE"] and cfg["HSTS_ENABLED"]
    assert cfg["LINK_SIGNING_KEYS"] == ["n" * 40, "o" * 40]
    assert cfg["PORTAL_BASE_URL"] == "https://pay.example.com"
    assert not (tmp_path / "secret_key").exists()


def test_development_makes_and_keeps_a_random_secret(tmp_path):
    first = load_config(str(tmp_path), {})
    second = load_config(str(tmp_path), {})
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 32
    assert not first["SESSION_COOKIE_SECURE"]


def test_bad_values(tmp_path):
    with pytest.raises(ConfigError):
        load_config(str(tmp_path), {"PORTAL_ENV": "staging"})
    with pytest.raises(ConfigError):
        load_config(str(tmp_path), {"STEP_UP_MAX_ATTEMPTS": "many"})


def test_database_urls():
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_tokens_are_redacted_from_log_lines():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1,
                               '%s - - "%s" %s', ("127.0.0.1", "GET /l/abc.def.ghi HTTP/1.1", "303"), None)
    RedactLinkTokens().filter(record)
    assert "abc.def.ghi" not in record.getMessage() and "/l/[redacted]" in record.getMessage()


def test_request_logging_never_shows_tokens(client, app, session, caplog):
    from tests.factories import make_creditor, make_invoice
    from tests.functional.helpers import issue

    issued = issue(app, make_invoice(make_creditor("NO")))
    caplog.set_level(logging.DEBUG)
    logging.getLogger("werkzeug").info('"GET /l/%s HTTP/1.1" 303', issued.token)
    client.get(f"/l/{issued.token}")
    assert issued.token not in caplog.text
