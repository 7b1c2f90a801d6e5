"""Every message is translated in every supported locale, its placeholders kept. (That messages.pot is
current, which extracts every message again, is checked in tests/functional/test_catalogs.py.)"""

import os

import pytest
from babel.messages.pofile import read_po

from app.cli import POT, TRANSLATIONS
from app.i18n import SUPPORTED_LOCALES


def ids(catalog):
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


def load(path, locale=None):
    with open(path, "rb") as f:
        return read_po(f, locale=locale)


@pytest.mark.parametrize("locale", [loc for loc in SUPPORTED_LOCALES if loc != "en"])
def test_every_message_is_translated(locale):
    path = os.path.join(TRANSLATIONS, locale, "LC_MESSAGES", "messages.po")
    catalog = load(path, locale)
    missing, fuzzy = [], []
    for message in load(POT):
        if not message.id:
            continue
        translated = catalog.get(message.id)
        if translated is None or not all(_forms(translated.string)):
            missing.append(message.id)
        elif translated.fuzzy:
            fuzzy.append(message.id)
    assert not missing, f"{locale}: {len(missing)} untranslated, e.g. {missing[:5]}"
    assert not fuzzy, f"{locale}: fuzzy translations to review: {fuzzy[:5]}"


def _forms(string: str | tuple[str, ...]) -> tuple[str, ...]:
    """A translation's forms: a plural's each, or the one string."""
    return string if isinstance(string, tuple) else (string,)


def test_placeholders_survive_translation():
    import re

    for locale in (loc for loc in SUPPORTED_LOCALES if loc != "en"):
        catalog = load(os.path.join(TRANSLATIONS, locale, "LC_MESSAGES", "messages.po"), locale)
        for message in catalog:
            if not message.id or not message.string:
                continue
            source = message.id if isinstance(message.id, tuple) else (message.id,)
            targets = message.string if isinstance(message.string, tuple) else (message.string,)
            wanted = set(re.findall(r"%\((\w+)\)[sd]", " ".join(source)))
            for target in targets:
                got = set(re.findall(r"%\((\w+)\)[sd]", target))
                assert got <= wanted and (got == wanted or "num" in wanted), (locale, message.id, target)

