"""Supported locales and the choice of locale for a request.

Order: an explicit switch on the page > the customer's language > Accept-Language >
the creditor's default > English.
"""

from functools import lru_cache

from babel.core import get_global
from babel.dates import get_timezone
from flask import Flask, g, request, session
from flask.globals import _cv_app, _cv_request
from flask_babel import get_translations
from jinja2 import pass_context
from jinja2.runtime import Context

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
    # The contexts read once (each use of a `flask.g`/`request`/`session` proxy looks them up again).
    request_ctx, app_ctx = _cv_request.get(None), _cv_app.get(None)
    found = vars(app_ctx.g) if app_ctx is not None else {}
    explicit, accept = None, None
    if request_ctx is not None:
        current_session = request_ctx.session  # marks it accessed, as the `session` proxy does
        explicit = current_session.get("locale") if current_session else None
        accept = request_ctx.request.accept_languages
    return choose_locale(explicit, found.get("customer_locale"), accept, found.get("creditor_locale"))


def language_switch() -> None:
    """Every customer and back-office page: ?lang=xx is the explicit switch, kept for this browser
    (it wins over every other source); and the page is not stored by caches (no-store)."""
    g.no_store = True
    current_request = request._get_current_object()  # type: ignore[attr-defined]  # the proxy read once
    lang = normalise_locale(current_request.args.get("lang")) if current_request.query_string else None
    if lang:
        session["locale"] = lang


def format_locale(locale: str) -> str:
    return FORMAT_LOCALES.get(str(locale), "en_GB")


@lru_cache(maxsize=64)
def country_zone(country: str):
    """The time zone of a creditor's country (its first, as Babel lists them): local days and times."""
    zones = get_global("territory_zones").get((country or "").upper()) or ["UTC"]
    return get_timezone(zones[0])


#: Where each render's context keeps the translations of its locale (`install_template_gettext`).
TEMPLATE_TRANSLATIONS = "_translations"


def _translations(context: Context):
    """The translations `render_template` put in this context; where none are (a macro imported without
    context, a template rendered directly), Flask-Babel's for the current locale."""
    found = context.get(TEMPLATE_TRANSLATIONS)
    return found if found is not None else get_translations()


def install_template_gettext(app: Flask) -> None:
    """Templates translate with the translations looked up once per render, not once per string.

    Flask-Babel's template callables look the request's translations up again for every string (the
    context, the locale's name, the domain's cache: about 20 µs each, and a bill page translates some 65
    strings, a tenth of its render). A context processor puts the current locale's translations in every
    `render_template`'s context (so a render inside `force_locale` gets that locale's, as before) and the
    callables read them there. Jinja's newstyle wrapping (autoescape, `%` formatting, `num`) is unchanged.
    Call after Flask-Babel's `init_app`, whose callables these replace."""

    @pass_context
    def gettext(context: Context, string: str) -> str:
        return _translations(context).ugettext(string)

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
        return _translations(context).ungettext(singular, plural, n)

    @pass_context
    def pgettext(context: Context, message_context: str, string: str) -> str:
        return _translations(context).upgettext(message_context, string)

    @pass_context
    def npgettext(context: Context, message_context: str, singular: str, plural: str, n: int) -> str:
        return _translations(context).unpgettext(message_context, singular, plural, n)

    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        gettext=gettext, ngettext=ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext)
    app.context_processor(lambda: {TEMPLATE_TRANSLATIONS: get_translations()})
