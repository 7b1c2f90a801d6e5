"""Settings, read from environment variables when the app is created (never at import)."""

import json
import math
import os
import re
import secrets
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: The checkout: templates/, static/, migrations/ and app/translations/ are found from here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(RuntimeError):
    """A required setting is missing or invalid."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer") from exc


def _choice(env, name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}")
    return value


def _metrics_token(env, production: bool) -> str:
    token = (env.get("METRICS_TOKEN") or "").strip()
    if token and production and len(token) < 32:
        raise ConfigError("METRICS_TOKEN must be at least 32 characters in production")
    return token


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the common short form."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _dev_secret(instance_path: str) -> str:
    """A random secret kept under instance/ so development sessions survive restarts."""
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _payment_gateways(env, instance_path: str) -> dict:
    """Provider credentials from PAYMENT_GATEWAYS_FILE (default: instance/payment_gateways.json, if
    present), a JSON object {creditor slug: {provider: {setting: value}}}. Kept out of the database
    (see docs/decisions.md): a file with the secrets' permissions, or a mounted secret."""
    path = Path(env.get("PAYMENT_GATEWAYS_FILE") or Path(instance_path) / "payment_gateways.json")
    if not path.exists():
        if env.get("PAYMENT_GATEWAYS_FILE"):
            raise ConfigError(f"PAYMENT_GATEWAYS_FILE {path} does not exist")
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:  # not UTF-8
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(providers, dict) and all(isinstance(v, dict) for v in providers.values())
        for providers in data.values()
    ):
        raise ConfigError(f"{path} must map creditor slugs to {{provider: {{setting: value}}}}")
    return data


def load_config(instance_path: str, env=None) -> dict:
    """Build the Flask config from the environment; fail early on missing secrets in production."""
    env = os.environ if env is None else env
    portal_env = env.get("PORTAL_ENV", "development")
    if portal_env not in {"development", "production", "testing"}:
        raise ConfigError("PORTAL_ENV must be development, production or testing")
    production = portal_env == "production"

    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if production:
            raise ConfigError("SECRET_KEY must be set in production")
        secret_key = _dev_secret(instance_path)

    # Old session keys, still accepted on the session cookie while SECRET_KEY rotates (Flask's fallbacks).
    secret_fallbacks = [k.strip() for k in env.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()]

    signing_keys = [k.strip() for k in env.get("LINK_SIGNING_KEYS", "").split(",") if k.strip()]
    if not signing_keys:
        if production:
            raise ConfigError("LINK_SIGNING_KEYS must be set in production")
        signing_keys = [secret_key]

    data_keys = [k.strip() for k in env.get("DATA_ENCRYPTION_KEYS", "").split(",") if k.strip()]
    if not data_keys:
        if production:
            raise ConfigError("DATA_ENCRYPTION_KEYS must be set in production")
        data_keys = ["data:" + secret_key]
    if production:
        _check_secrets(secret_key, signing_keys, data_keys)

    default_db = "sqlite:///" + str(Path(instance_path) / "portal.db")
    database_url = normalise_database_url(env.get("DATABASE_URL", default_db))
    base_url = env.get("PORTAL_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    if production and not base_url.startswith("https://"):
        raise ConfigError("PORTAL_BASE_URL must be an https:// URL in production")

    config: dict[str, Any] = {
        "PORTAL_ENV": portal_env,
        "TESTING": portal_env == "testing",
        "SECRET_KEY": secret_key,
        "SECRET_KEY_FALLBACKS": secret_fallbacks,
        "LINK_SIGNING_KEYS": signing_keys,
        # Encrypt secrets kept in the database that we must read back (partners' signing secrets).
        "DATA_ENCRYPTION_KEYS": data_keys,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A server connection can die between requests; an SQLite file cannot. PostgreSQL's pooled
        # connections are checked at checkout without a round trip (app/core/connections.py), not by
        # pool_pre_ping's empty statement.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "PORTAL_BASE_URL": base_url,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        "SESSION_COOKIE_NAME": "portal_session",
        "HSTS_ENABLED": _bool(env.get("HSTS_ENABLED"), production),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": 3600 * 8,
        # Flask-WTF's own hook runs on every request, GETs included; app.security checks
        # CSRF on every unsafe method instead (POST, PUT, PATCH, DELETE).
        "WTF_CSRF_CHECK_DEFAULT": False,
        # Flask-WTF's referrer check on HTTPS (a same-origin Referer required) is replaced by
        # app.security.OriginCheck, which reads Origin first: see docs/decisions.md.
        "WTF_CSRF_SSL_STRICT": False,
        "PROXY_FIX_COUNT": _int(env, "PROXY_FIX_COUNT", 0),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        "LINK_RATE_LIMIT": env.get("LINK_RATE_LIMIT", "60 per minute"),
        # A letter's short code (/k/<code>): 50 bits, typed by hand, so guessed at more than a link.
        "CODE_RATE_LIMIT": env.get("CODE_RATE_LIMIT", "10 per minute; 100 per day"),
        "STEP_UP_RATE_LIMIT": env.get("STEP_UP_RATE_LIMIT", "10 per minute"),
        "STEP_UP_MAX_ATTEMPTS": _int(env, "STEP_UP_MAX_ATTEMPTS", 5),
        "LINK_MAX_AGE_DAYS": _int(env, "LINK_MAX_AGE_DAYS", 400),
        "LINK_DEFAULT_TTL_DAYS": _int(env, "LINK_DEFAULT_TTL_DAYS", 60),
        "LINK_OPEN_EVENT_INTERVAL_MINUTES": _int(env, "LINK_OPEN_EVENT_INTERVAL_MINUTES", 30),
        # A payment is attributed to the reminder whose link was last opened within this many days before it.
        "ANALYTICS_ATTRIBUTION_DAYS": _int(env, "ANALYTICS_ATTRIBUTION_DAYS", 7),
        "GRANT_MAX_AGE_HOURS": _int(env, "GRANT_MAX_AGE_HOURS", 12),
        # "Send me a new link" on the page of an expired or revoked link: requests per client address,
        # and new links a bill gets this way in a day (more are not sent; the answer is the same).
        "NEW_LINK_RATE_LIMIT": env.get("NEW_LINK_RATE_LIMIT", "5 per hour; 20 per day"),
        "NEW_LINK_PER_BILL_PER_DAY": _int(env, "NEW_LINK_PER_BILL_PER_DAY", 3),
        "PAGE_CACHE_ENTRIES": _int(env, "PAGE_CACHE_ENTRIES", 1000),
        # Invoice PDFs: rendered once per invoice version, language and day, kept in each process up
        # to this many megabytes (0: none kept); downloads per client address.
        "PDF_CACHE_MB": _int(env, "PDF_CACHE_MB", 64),
        "PDF_RATE_LIMIT": env.get("PDF_RATE_LIMIT", "20 per minute; 200 per hour"),
        # The test-mode payment simulator: on outside production unless turned off.
        "PAYMENTS_SIMULATOR": _bool(env.get("PAYMENTS_SIMULATOR"), not production),
        "PAY_RATE_LIMIT": env.get("PAY_RATE_LIMIT", "20 per minute"),
        # Contact, dispute, promise, deferral and plan forms: every POST, per client address.
        "SELF_SERVICE_RATE_LIMIT": env.get("SELF_SERVICE_RATE_LIMIT", "10 per minute; 60 per hour"),
        # Customers' attachments: on disk, outside static/, never served inline.
        "ATTACHMENT_DIR": env.get("ATTACHMENT_DIR") or str(Path(instance_path) / "attachments"),
        "ATTACHMENT_MAX_BYTES": _int(env, "ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024),
        # Back office: sign-in attempts per client address, and how long an agent's session lasts.
        "BACKOFFICE_SIGN_IN_RATE_LIMIT": env.get("BACKOFFICE_SIGN_IN_RATE_LIMIT", "10 per minute"),
        "BACKOFFICE_IDLE_MINUTES": _int(env, "BACKOFFICE_IDLE_MINUTES", 30),
        "BACKOFFICE_SESSION_HOURS": _int(env, "BACKOFFICE_SESSION_HOURS", 12),
        # Apply a provider's notification in its request (on), or store it, answer at once and let
        # `flask payments apply-events` apply it (off: production, where that worker runs).
        "WEBHOOKS_APPLY_INLINE": _bool(env.get("WEBHOOKS_APPLY_INLINE"), not production),
        # Each creditor's provider credentials: {creditor slug: {"stripe": {...}, "adyen": {...}}}.
        "PAYMENT_GATEWAYS": _payment_gateways(env, instance_path),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        # One JSON object per line (production's default), or plain text lines.
        "LOG_FORMAT": _choice(env, "LOG_FORMAT", ("json", "text"), "json" if production else "text"),
        # /metrics answers only a request bearing this token; empty: /metrics is off (404).
        "METRICS_TOKEN": _metrics_token(env, production),
        **_mail_and_outbox(env, production, base_url),
        **_sms(env, production),
        **_collection(env, production),
    }
    if config["OUTBOX_LEASE_SECONDS"] <= 4 * config["SMS_TIMEOUT_SECONDS"]:
        raise ConfigError("OUTBOX_LEASE_SECONDS must be well above SMS_TIMEOUT_SECONDS (more than 4 times)")
    if production:
        _check_production_switches(config)
    return config


# --- what production refuses --------------------------------------------------------------

#: A secret's least length, and the least entropy estimated from its own characters (see key_strength_problem).
KEY_MIN_LENGTH = 32
KEY_MIN_BITS = 128
KEY_ADVICE = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def estimated_bits(key: str) -> float:
    """The key's length times the Shannon entropy of its characters' frequencies: what the key
    itself shows of its randomness. "k" * 40 has 0 bits, "abcd" * 10 has 80, a 43-character
    `secrets.token_urlsafe(32)` about 200. An estimate from one sample: it underrates short keys
    from a small alphabet (32 hex digits, 128 random bits, show about 116), so give such keys longer."""
    counts = Counter(key)
    return -sum(n * math.log2(n / len(key)) for n in counts.values())


def _repeats_a_block(key: str) -> bool:
    """True when the key is a shorter block written again and again ("0123456789" * 4)."""
    return any(len(key) % size == 0 and key == key[:size] * (len(key) // size) for size in range(1, len(key) // 2 + 1))


def key_strength_problem(key: str) -> str | None:
    """Why `key` is too weak for production, or None: at least KEY_MIN_LENGTH characters, at least
    KEY_MIN_BITS bits by `estimated_bits`, and not a block repeated."""
    if len(key) < KEY_MIN_LENGTH:
        return f"must be at least {KEY_MIN_LENGTH} characters"
    if estimated_bits(key) < KEY_MIN_BITS or _repeats_a_block(key):
        return (f"is too predictable: it needs at least {KEY_MIN_BITS} bits of entropy estimated from its characters "
                f"(length x Shannon entropy) and must not repeat a shorter block; {KEY_ADVICE}")
    return None


def _check_secrets(secret_key: str, signing_keys: list[str], data_keys: list[str]) -> None:
    """Production's secrets: each strong (key_strength_problem), and no value used twice, in one
    setting or across the three (a leak of one must not give away what another protects). The
    message names the setting, never the value."""
    named = [("SECRET_KEY", secret_key)]
    named += [(f"LINK_SIGNING_KEYS entry {i}" if len(signing_keys) > 1 else "LINK_SIGNING_KEYS", key)
              for i, key in enumerate(signing_keys, 1)]
    named += [(f"DATA_ENCRYPTION_KEYS entry {i}" if len(data_keys) > 1 else "DATA_ENCRYPTION_KEYS", key)
              for i, key in enumerate(data_keys, 1)]
    seen: dict[str, str] = {}
    for name, key in named:
        problem = key_strength_problem(key)
        if problem:
            raise ConfigError(f"{name} {problem}")
        if key in seen:
            raise ConfigError(f"{name} is the same as {seen[key]}: SECRET_KEY, LINK_SIGNING_KEYS and "
                              "DATA_ENCRYPTION_KEYS must each be a different secret")
        seen[key] = name


#: Settings production runs with one value only: (setting, the value it must have, why).
PRODUCTION_SWITCHES = (
    ("RATELIMIT_ENABLED", True, "rate limits guard links, step-up answers, sign-in and forms"),
    ("SESSION_COOKIE_SECURE", True, "the session cookie must never travel over plain HTTP"),
    ("HSTS_ENABLED", True, "browsers must keep to HTTPS"),
    ("PAYMENTS_SIMULATOR", False, "its test page marks bills paid without any money"),
)


def _check_production_switches(config: dict) -> None:
    for name, required, why in PRODUCTION_SWITCHES:
        if config[name] is not required:
            raise ConfigError(f"{name} must be {str(required).lower()} in production: {why}")


# --- e-mail and the outbox dispatcher ---------------------------------------------------

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def _mail_and_outbox(env, production: bool, base_url: str) -> dict:
    """SMTP settings for the outbox's e-mail channel, and the dispatcher's pace.

    A local relay (127.0.0.1:25, as a Postfix or an SMTP sidecar would listen) is the default:
    it queues mail when the provider is slow, so the dispatcher's retries cover only our side.
    A login to a remote server must go over TLS in production: the password is never sent in clear."""
    use_tls, use_ssl = _bool(env.get("MAIL_USE_TLS"), False), _bool(env.get("MAIL_USE_SSL"), False)
    if use_tls and use_ssl:
        raise ConfigError("MAIL_USE_TLS (STARTTLS) and MAIL_USE_SSL (implicit TLS) exclude each other")
    server = env.get("MAIL_SERVER") or "127.0.0.1"
    username, password = env.get("MAIL_USERNAME") or None, env.get("MAIL_PASSWORD") or None
    if bool(username) != bool(password):
        raise ConfigError("MAIL_USERNAME and MAIL_PASSWORD go together")
    if production and username and not (use_tls or use_ssl) and server not in LOOPBACK_HOSTS:
        raise ConfigError("an SMTP login needs MAIL_USE_TLS or MAIL_USE_SSL in production")
    host = urlsplit(base_url).hostname
    host = "localhost" if not host or host in LOOPBACK_HOSTS else host
    config: dict[str, Any] = {
        "MAIL_SERVER": server,
        "MAIL_PORT": _int(env, "MAIL_PORT", 465 if use_ssl else 587 if use_tls else 25),
        "MAIL_USE_TLS": use_tls,
        "MAIL_USE_SSL": use_ssl,
        "MAIL_USERNAME": username,
        "MAIL_PASSWORD": password,
        # The envelope sender and From address; the From's display name is the creditor's.
        "MAIL_FROM": env.get("MAIL_FROM") or f"no-reply@{host}",
        "MAIL_TIMEOUT_SECONDS": _int(env, "MAIL_TIMEOUT_SECONDS", 30),
        "OUTBOX_MAX_ATTEMPTS": _int(env, "OUTBOX_MAX_ATTEMPTS", 8),
        "OUTBOX_RETRY_BASE_SECONDS": _int(env, "OUTBOX_RETRY_BASE_SECONDS", 30),
        "OUTBOX_RETRY_MAX_SECONDS": _int(env, "OUTBOX_RETRY_MAX_SECONDS", 3600),
        # How long a claimed message is left to its dispatcher before another may take it:
        # well above the time one delivery can take (MAIL_TIMEOUT_SECONDS per SMTP step).
        "OUTBOX_LEASE_SECONDS": _int(env, "OUTBOX_LEASE_SECONDS", 300),
        "OUTBOX_BATCH_SIZE": _int(env, "OUTBOX_BATCH_SIZE", 50),
        "OUTBOX_POLL_SECONDS": _int(env, "OUTBOX_POLL_SECONDS", 5),
    }
    for name in ("OUTBOX_MAX_ATTEMPTS", "OUTBOX_BATCH_SIZE", "OUTBOX_LEASE_SECONDS", "MAIL_TIMEOUT_SECONDS"):
        if config[name] < 1:
            raise ConfigError(f"{name} must be at least 1")
    if config["OUTBOX_LEASE_SECONDS"] <= 4 * config["MAIL_TIMEOUT_SECONDS"]:
        raise ConfigError("OUTBOX_LEASE_SECONDS must be well above MAIL_TIMEOUT_SECONDS (more than 4 times)")
    return config


# --- SMS (the outbox's "sms" channel) ----------------------------------------------------

SMS_PROVIDERS = {"", "twilio"}
#: An E.164 number, or Twilio's alphanumeric sender id: up to 11 of A-Z a-z 0-9 space + - _ &, one letter at least.
SMS_SENDER = re.compile(r"\+[1-9][0-9]{7,14}|(?=.*[A-Za-z])[A-Za-z0-9 +\-_&]{1,11}")
TWILIO_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")


def _sms(env, production: bool) -> dict:
    """The SMS channel: off unless SMS_PROVIDER names a provider, then its credentials are required.

    TWILIO_BASE_URL points the SDK at another API host (the tests' local server); in production it
    must be https, since the auth token goes with every request."""
    provider = (env.get("SMS_PROVIDER") or "").strip().lower()
    if provider not in SMS_PROVIDERS:
        raise ConfigError('SMS_PROVIDER must be empty (no SMS) or "twilio"')
    config: dict[str, Any] = {
        "SMS_PROVIDER": provider,
        "TWILIO_ACCOUNT_SID": (env.get("TWILIO_ACCOUNT_SID") or "").strip(),
        "TWILIO_AUTH_TOKEN": (env.get("TWILIO_AUTH_TOKEN") or "").strip(),
        "SMS_FROM": (env.get("SMS_FROM") or "").strip(),
        "TWILIO_BASE_URL": (env.get("TWILIO_BASE_URL") or "").strip().rstrip("/") or None,
        "SMS_TIMEOUT_SECONDS": _int(env, "SMS_TIMEOUT_SECONDS", 15),
    }
    if config["SMS_TIMEOUT_SECONDS"] < 1:
        raise ConfigError("SMS_TIMEOUT_SECONDS must be at least 1")
    if provider == "twilio":
        missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SMS_FROM") if not config[name]]
        if missing:
            raise ConfigError(f"SMS_PROVIDER=twilio needs {', '.join(missing)}")
        if not TWILIO_ACCOUNT_SID.fullmatch(config["TWILIO_ACCOUNT_SID"]):
            raise ConfigError("TWILIO_ACCOUNT_SID must be an account SID: AC and 32 hex digits")
        if not SMS_SENDER.fullmatch(config["SMS_FROM"]):
            raise ConfigError("SMS_FROM must be an E.164 number (+4791234567) or an alphanumeric sender id "
                              "(up to 11 letters, digits, spaces or + - _ &, one letter at least)")
    base_url = config["TWILIO_BASE_URL"]
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError("TWILIO_BASE_URL must be an http(s):// URL")
        if production and parts.scheme != "https":
            raise ConfigError("TWILIO_BASE_URL must be an https:// URL in production")
    return config


# --- debt collection -------------------------------------------------------------------------


def _collection(env, production: bool) -> dict:
    """Where partners' deliveries may go, and how long the outbox keeps trying them.

    COLLECTION_ENDPOINT_HOSTS is the allowlist of partner hosts ("api.inkasso.example,
    *.collect.example"); empty in production means no endpoint is accepted. Outside production an
    empty list allows any host, http and loopback included (the tests' receiver, a local demo)."""
    hosts = tuple(h.strip().lower() for h in env.get("COLLECTION_ENDPOINT_HOSTS", "").split(",") if h.strip())
    config: dict[str, Any] = {
        "COLLECTION_ENDPOINT_HOSTS": hosts,
        "COLLECTION_ALLOW_PRIVATE_ENDPOINTS": not production,
        "COLLECTION_PDF_URL_DAYS": _int(env, "COLLECTION_PDF_URL_DAYS", 30),
        "PARTNER_API_RATE_LIMIT": env.get("PARTNER_API_RATE_LIMIT", "300 per minute"),
        "WEBHOOK_TIMEOUT_SECONDS": _int(env, "WEBHOOK_TIMEOUT_SECONDS", 15),
        # Partners' deliveries are retried for about three days (backoff with jitter, capped), then dead.
        "WEBHOOK_RETRY_BASE_SECONDS": _int(env, "WEBHOOK_RETRY_BASE_SECONDS", 60),
        "WEBHOOK_RETRY_MAX_SECONDS": _int(env, "WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600),
        "WEBHOOK_DEADLINE_HOURS": _int(env, "WEBHOOK_DEADLINE_HOURS", 72),
    }
    for name in ("COLLECTION_PDF_URL_DAYS", "WEBHOOK_TIMEOUT_SECONDS", "WEBHOOK_RETRY_BASE_SECONDS",
                 "WEBHOOK_DEADLINE_HOURS"):
        if config[name] < 1:
            raise ConfigError(f"{name} must be at least 1")
    return config
