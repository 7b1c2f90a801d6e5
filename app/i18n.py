"""Supported locales and the choice of locale for a request.

Order: an explicit switch on the page > the customer's language > Accept-Language >
the creditor's default > English.
"""

from functools import lru_cache

from babel.core import get_global
from babel.dates import get_timezone
from flask import g, request, session

SUPPORTED_LOCALES = ("en", "nb", "de")
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"en": "English", "nb": "Norsk bokmål", "de": "Deutsch"}
# Babel locale used to format money and dates for each supported language.
FORMAT_LOCALES = {"en": "en_GB", "nb": "nb_NO", "de": "de_DE"}
ALIASES = {"no": "nb", "nn": "nb"}


def normalise_locale(value: str | None) -> str | None:
    """'nb-NO', 'no', 'de_AT' -> a supported locale, or None."""
    if not value:
        return None
    base = value.replace("_", "-").split("-")[0].lower()
    base = ALIASES.get(base, base)
    return base if base in SUPPORTED_LOCALES else None


def choose_locale(explicit: str | None, customer: str | None, accept, creditor_default: str | None) -> str:
    """Pure decision function; `accept` is a werkzeug LanguageAccept or None."""
    for candidate in (explicit, customer):
        found = normalise_locale(candidate)
        if found:
            return found
    if accept is not None:
        for lang, _quality in accept:
            found = normalise_locale(lang)
            if found:
                return found
    return normalise_locale(creditor_default) or DEFAULT_LOCALE


def select_locale() -> str:
    """Flask-Babel's locale selector: views put the bill's context in g before rendering."""
    # An empty session (no cookie) has no choice in it; reading it would still mark the
    # session accessed and cost a `Vary: Cookie` on a page that is never cached anyway.
    explicit = session.get("locale") if request and session else None
    return choose_locale(
        explicit,
        getattr(g, "customer_locale", None),
        request.accept_languages if request else None,
        getattr(g, "creditor_locale", None),
    )


def language_switch() -> None:
    """Every customer and back-office page: ?lang=xx is the explicit switch, kept for this browser
    (it wins over every other source); and the page is not stored by caches (no-store)."""
    g.no_store = True
    lang = normalise_locale(request.args.get("lang")) if request.query_string else None
    if lang:
        session["locale"] = lang


def format_locale(locale: str) -> str:
    return FORMAT_LOCALES.get(str(locale), "en_GB")


@lru_cache(maxsize=64)
def country_zone(country: str):
    """The time zone of a creditor's country (its first, as Babel lists them): local days and times."""
    zones = get_global("territory_zones").get((country or "").upper()) or ["UTC"]
    return get_timezone(zones[0])
