import logging

import pytest

from app.config import ConfigError, load_config, normalise_database_url
from app.security import RedactLinkTokens
from tests.support.keys import (
    DATA_ENCRYPTION_KEY,
    LINK_SIGNING_KEY,
    OLD_LINK_SIGNING_KEY,
    PRODUCTION_ENV,
    SECRET_KEY,
)

STRONG = SECRET_KEY


def test_production_requires_secrets(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path), {"PORTAL_ENV": "production"})
    with pytest.raises(ConfigError, match="LINK_SIGNING_KEYS"):
        load_config(str(tmp_path), {"PORTAL_ENV": "production", "SECRET_KEY": STRONG})
    with pytest.raises(ConfigError, match="at least 32"):
        load_config(str(tmp_path), {**PRODUCTION_ENV, "SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEYS"):
        load_config(str(tmp_path), {"PORTAL_ENV": "production", "SECRET_KEY": STRONG,
                                    "LINK_SIGNING_KEYS": LINK_SIGNING_KEY})
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEYS must be at least 32"):
        load_config(str(tmp_path), {**PRODUCTION_ENV, "DATA_ENCRYPTION_KEYS": "short"})
    with pytest.raises(ConfigError, match="https"):
        load_config(str(tmp_path), {**PRODUCTION_ENV, "PORTAL_BASE_URL": "http://pay.example.com"})


def test_production_settings(tmp_path):
    keys = f"{LINK_SIGNING_KEY}, {OLD_LINK_SIGNING_KEY}"
    cfg = load_config(str(tmp_path), {**PRODUCTION_ENV, "LINK_SIGNING_KEYS": keys,
                                      "PORTAL_BASE_URL": "https://pay.example.com/"})
    assert cfg["SESSION_COOKIE_SECURE"] and cfg["HSTS_ENABLED"] and cfg["RATELIMIT_ENABLED"]
    assert not cfg["PAYMENTS_SIMULATOR"]
    assert cfg["LINK_SIGNING_KEYS"] == [LINK_SIGNING_KEY, OLD_LINK_SIGNING_KEY]
    assert cfg["PORTAL_BASE_URL"] == "https://pay.example.com"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("weak", [
    "k" * 40,  # one character: no entropy at all
    "abcd" * 10,  # four characters: 80 bits by the estimate
    "0123456789" * 4,  # 133 bits by the estimate, but a block repeated
    "password1234567890password1234567890",
    "0123456789abcdef" * 2,  # 128 bits by the estimate, a block repeated
    "e3b0c44298fc1c149afbf4c8996fb924",  # 32 hex digits (a hash prefix): 115 bits by the estimate
])
@pytest.mark.parametrize("setting", ["SECRET_KEY", "LINK_SIGNING_KEYS", "DATA_ENCRYPTION_KEYS"])
def test_production_refuses_weak_secrets(tmp_path, weak, setting):
    with pytest.raises(ConfigError, match=f"^{setting} is too predictable"):
        load_config(str(tmp_path), {**PRODUCTION_ENV, setting: weak})


def test_a_weak_older_key_is_refused_too(tmp_path):
    with pytest.raises(ConfigError, match=r"^LINK_SIGNING_KEYS entry 2 is too predictable"):
        load_config(str(tmp_path), {**PRODUCTION_ENV, "LINK_SIGNING_KEYS": f"{LINK_SIGNING_KEY},{'o' * 40}"})


@pytest.mark.parametrize("same, problem", [
    ({"SECRET_KEY": STRONG, "LINK_SIGNING_KEYS": STRONG, "DATA_ENCRYPTION_KEYS": STRONG},
     "LINK_SIGNING_KEYS is the same as SECRET_KEY"),
    ({"DATA_ENCRYPTION_KEYS": LINK_SIGNING_KEY}, "DATA_ENCRYPTION_KEYS is the same as LINK_SIGNING_KEYS"),
    ({"DATA_ENCRYPTION_KEYS": f"{DATA_ENCRYPTION_KEY},{SECRET_KEY}"},
     "DATA_ENCRYPTION_KEYS entry 2 is the same as SECRET_KEY"),
    ({"LINK_SIGNING_KEYS": f"{LINK_SIGNING_KEY},{LINK_SIGNING_KEY}"},
     "LINK_SIGNING_KEYS entry 2 is the same as LINK_SIGNING_KEYS entry 1"),
])
def test_production_refuses_a_secret_used_twice(tmp_path, same, problem):
    with pytest.raises(ConfigError, match=problem) as refused:
        load_config(str(tmp_path), {**PRODUCTION_ENV, **same})
    assert not any(key in str(refused.value) for key in (SECRET_KEY, LINK_SIGNING_KEY, DATA_ENCRYPTION_KEY))


def test_strong_keys_of_the_usual_generators_pass():
    import secrets

    from app.config import estimated_bits, key_strength_problem

    for _ in range(200):
        for key in (secrets.token_urlsafe(32), secrets.token_hex(32), secrets.token_urlsafe(48)):
            assert key_strength_problem(key) is None, (key, estimated_bits(key))
    assert estimated_bits("k" * 40) == 0 and round(estimated_bits("abcd" * 10)) == 80


@pytest.mark.parametrize("setting, value, problem", [
    ("RATELIMIT_ENABLED", "false", "RATELIMIT_ENABLED must be true in production"),
    ("SESSION_COOKIE_SECURE", "0", "SESSION_COOKIE_SECURE must be true in production"),
    ("HSTS_ENABLED", "off", "HSTS_ENABLED must be true in production"),
    ("PAYMENTS_SIMULATOR", "true", "PAYMENTS_SIMULATOR must be false in production"),
])
def test_production_refuses_weak_switches(tmp_path, setting, value, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(str(tmp_path), {**PRODUCTION_ENV, setting: value})
    # outside production they stay the developer's choice
    load_config(str(tmp_path), {setting: value})


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


# --- SMS ------------------------------------------------------------------------------------

TWILIO = {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
          "TWILIO_AUTH_TOKEN": "t" * 32, "SMS_FROM": "+4759440000"}
PRODUCTION = PRODUCTION_ENV


def test_sms_is_off_by_default(tmp_path):
    cfg = load_config(str(tmp_path), {})
    assert cfg["SMS_PROVIDER"] == "" and cfg["TWILIO_BASE_URL"] is None and cfg["SMS_TIMEOUT_SECONDS"] == 15
    assert load_config(str(tmp_path), PRODUCTION)["SMS_PROVIDER"] == ""  # production does not need SMS


def test_twilio_settings(tmp_path):
    cfg = load_config(str(tmp_path), {**TWILIO, "SMS_PROVIDER": " Twilio ", "TWILIO_BASE_URL": "http://127.0.0.1:8080/",
                                      "SMS_TIMEOUT_SECONDS": "5"})
    assert cfg["SMS_PROVIDER"] == "twilio" and cfg["TWILIO_ACCOUNT_SID"] == TWILIO["TWILIO_ACCOUNT_SID"]
    assert cfg["TWILIO_BASE_URL"] == "http://127.0.0.1:8080" and cfg["SMS_TIMEOUT_SECONDS"] == 5
    assert load_config(str(tmp_path), {**TWILIO, "SMS_FROM": "Acme AS"})["SMS_FROM"] == "Acme AS"


@pytest.mark.parametrize("env, problem", [
    ({"SMS_PROVIDER": "nexmo"}, "SMS_PROVIDER"),
    ({**TWILIO, "TWILIO_AUTH_TOKEN": ""}, "needs TWILIO_AUTH_TOKEN"),
    ({"SMS_PROVIDER": "twilio"}, "needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SMS_FROM"),
    ({**TWILIO, "TWILIO_ACCOUNT_SID": "SK" + "0" * 32}, "TWILIO_ACCOUNT_SID"),
    ({**TWILIO, "SMS_FROM": "004759440000"}, "SMS_FROM"),
    ({**TWILIO, "SMS_FROM": "Acme Collect AS"}, "SMS_FROM"),  # an alphanumeric sender id has 11 characters at most
    ({**TWILIO, "SMS_FROM": "12345"}, "SMS_FROM"),  # ... and one letter at least
    ({**TWILIO, "TWILIO_BASE_URL": "api.twilio.com"}, "TWILIO_BASE_URL"),
    ({**TWILIO, "SMS_TIMEOUT_SECONDS": "0"}, "SMS_TIMEOUT_SECONDS"),
])
def test_bad_sms_settings_are_refused(tmp_path, env, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(str(tmp_path), env)


def test_production_talks_to_twilio_over_https_only(tmp_path):
    with pytest.raises(ConfigError, match="https"):
        load_config(str(tmp_path), {**PRODUCTION, **TWILIO, "TWILIO_BASE_URL": "http://twilio.internal"})
    cfg = load_config(str(tmp_path), {**PRODUCTION, **TWILIO, "TWILIO_BASE_URL": "https://api.dublin.ie1.twilio.com"})
    assert cfg["TWILIO_BASE_URL"] == "https://api.dublin.ie1.twilio.com"
    assert load_config(str(tmp_path), {**PRODUCTION, **TWILIO})["TWILIO_BASE_URL"] is None


def test_the_auth_token_is_not_in_the_sms_settings_repr(tmp_path):
    from app.outbox.sms import SmsSettings

    settings = SmsSettings.from_config(load_config(str(tmp_path), TWILIO))
    assert TWILIO["TWILIO_AUTH_TOKEN"] not in repr(settings) and "+4759440000" in repr(settings)
