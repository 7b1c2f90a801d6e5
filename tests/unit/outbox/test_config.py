"""The e-mail and outbox settings: sensible defaults, contradictions refused, no login in clear in production."""

import pytest

from app.config import ConfigError, load_config
from tests.support.keys import PRODUCTION_ENV as PRODUCTION

STRONG = "s" * 40  # an SMTP password


def test_defaults(tmp_path):
    cfg = load_config(str(tmp_path), {})
    assert (cfg["MAIL_SERVER"], cfg["MAIL_PORT"], cfg["MAIL_FROM"]) == ("127.0.0.1", 25, "no-reply@localhost")
    assert cfg["OUTBOX_MAX_ATTEMPTS"] == 8 and cfg["OUTBOX_RETRY_BASE_SECONDS"] == 30
    assert cfg["OUTBOX_RETRY_MAX_SECONDS"] == 3600 and cfg["OUTBOX_LEASE_SECONDS"] == 300
    assert load_config(str(tmp_path), PRODUCTION)["MAIL_FROM"] == "no-reply@pay.example.com"


def test_ports_follow_the_tls_mode(tmp_path):
    assert load_config(str(tmp_path), {"MAIL_USE_TLS": "1"})["MAIL_PORT"] == 587
    assert load_config(str(tmp_path), {"MAIL_USE_SSL": "1"})["MAIL_PORT"] == 465
    assert load_config(str(tmp_path), {"MAIL_USE_SSL": "1", "MAIL_PORT": "2465"})["MAIL_PORT"] == 2465


@pytest.mark.parametrize("env, problem", [
    ({"MAIL_USE_TLS": "1", "MAIL_USE_SSL": "1"}, "exclude each other"),
    ({"MAIL_USERNAME": "portal"}, "go together"),
    ({"OUTBOX_MAX_ATTEMPTS": "0"}, "OUTBOX_MAX_ATTEMPTS"),
    ({"OUTBOX_LEASE_SECONDS": "60"}, "OUTBOX_LEASE_SECONDS"),
])
def test_contradictions_are_refused(tmp_path, env, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(str(tmp_path), env)


def test_production_logs_in_over_tls_only(tmp_path):
    login = {"MAIL_SERVER": "smtp.example.com", "MAIL_USERNAME": "portal", "MAIL_PASSWORD": STRONG}
    with pytest.raises(ConfigError, match="TLS"):
        load_config(str(tmp_path), {**PRODUCTION, **login})
    assert load_config(str(tmp_path), {**PRODUCTION, **login, "MAIL_USE_TLS": "true"})["MAIL_PASSWORD"] == STRONG
    assert load_config(str(tmp_path), {**PRODUCTION, **login, "MAIL_SERVER": "127.0.0.1"})["MAIL_USERNAME"] == "portal"
