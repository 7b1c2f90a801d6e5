"""A creditor's dunning settings: the languages it writes in, the cap across a customer's bills,
quiet hours, and Germany's consumer default notice (§ 286(3) BGB). Adds and flushes."""

from __future__ import annotations

from collections.abc import Sequence

from app.creditors.models import Creditor
from app.dunning.models import Settings
from app.errors import InvalidData
from app.extensions import db
from app.i18n import SUPPORTED_LOCALES, normalise_locale
from app.models import utcnow


def settings_of(creditor: Creditor) -> Settings:
    """The creditor's dunning settings; defaults (not added to the session) when it has none."""
    found = db.session.get(Settings, creditor.id)
    if found is not None:
        return found
    return Settings(creditor_id=creditor.id, languages=default_languages(creditor), message_interval_days=3,
                    quiet_from=21, quiet_until=8, consumer_default_notice=False)


def default_languages(creditor: Creditor) -> list[str]:
    """A creditor that declared none writes in its own language and English."""
    own = normalise_locale(creditor.default_locale) or "en"
    return [own] if own == "en" else [own, "en"]


def languages_of(creditor: Creditor) -> list[str]:
    return list(settings_of(creditor).languages or default_languages(creditor))


def save_settings(creditor: Creditor, *, languages: Sequence[str] | None = None,
                  message_interval_days: int | None = None, quiet_from: int | None = None,
                  quiet_until: int | None = None, consumer_default_notice: bool | None = None) -> Settings:
    """Change the settings given (None: unchanged). Languages are checked against those the portal serves."""
    errors = {}
    if languages is not None:
        languages = [normalise_locale(language) or language for language in languages]
        unknown = [language for language in languages if language not in SUPPORTED_LOCALES]
        if unknown or not languages:
            errors["languages"] = f"one or more of {', '.join(SUPPORTED_LOCALES)}"
        languages = list(dict.fromkeys(languages))
    if message_interval_days is not None and not 0 <= message_interval_days <= 60:
        errors["message_interval_days"] = "from 0 to 60 days"
    for name, hour in (("quiet_from", quiet_from), ("quiet_until", quiet_until)):
        if hour is not None and not 0 <= hour <= 23:
            errors[name] = "an hour from 0 to 23"
    if errors:
        raise InvalidData(errors)
    settings = db.session.get(Settings, creditor.id)
    if settings is None:
        settings = settings_of(creditor)
        db.session.add(settings)
    for name, value in (("languages", languages), ("message_interval_days", message_interval_days),
                        ("quiet_from", quiet_from), ("quiet_until", quiet_until),
                        ("consumer_default_notice", consumer_default_notice)):
        if value is not None:
            setattr(settings, name, value)
    # The bill page and the PDF show the consumer default notice: pages cached under the creditor's
    # version (`access.services.bill_access`) are rendered again.
    creditor.updated_at = utcnow()
    db.session.flush()
    return settings


def consumer_default_notice(creditor: Creditor) -> bool:
    """Germany, § 286(3) BGB: whether the creditor's bill page and PDF tell consumers that they are in
    default 30 days after the due date and receipt, without a reminder (the bill page and PDF ask this)."""
    return creditor.country == "DE" and bool(settings_of(creditor).consumer_default_notice)
