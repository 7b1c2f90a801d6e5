"""Quantities with their units in words and plurals (Babel's ngettext), periods in one date format."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from flask_babel import force_locale

from app.templating import date_range, quantity_with_unit


@pytest.mark.parametrize(("lang", "quantity", "unit", "said"), [
    ("en", "3", "text", "3 text messages"), ("en", "1", "text", "1 text message"),
    ("nb", "3", "text", "3 tekstmeldinger"), ("nb", "1", "sms", "1 tekstmelding"),
    ("de", "3", "text", "3 SMS"),
    ("en", "2", "mnd", "2 months"), ("nb", "1", "Monat", "1 måned"), ("de", "2", "month", "2 Monate"),
    ("en", "1.5", "month", "1.5 months"), ("de", "1.5", "month", "1,5 Monate"),
    ("en", "46", "min", "46 min"), ("de", "1.25", "GB", "1,25 GB"), ("en", "2", None, "2"),
])
def test_units_in_words(app, lang, quantity, unit, said):
    with app.test_request_context(), force_locale(lang):
        assert quantity_with_unit(Decimal(quantity), unit) == said


def test_a_period_in_the_pages_date_format(app):
    with app.test_request_context(), force_locale("de"):
        said = str(date_range(date(2026, 10, 1), date(2026, 10, 31)))
    assert said == '<span class="nw">1. Oktober 2026</span> – <span class="nw">31. Oktober 2026</span>'
