"""Templates translate with the translations of their render's locale, looked up once per render."""

from __future__ import annotations

from flask import render_template_string
from flask_babel import force_locale
from jinja2 import ChoiceLoader, DictLoader

import app.i18n as i18n

PAGE = ("{{ _('Pay now') }}|{{ ngettext('%(num)d bill', '%(num)d bills', 3) }}|"
        "{{ ngettext('%(num)d bill', '%(num)d bills', 1) }}|{{ _('100%%') }}")


def with_templates(app, monkeypatch, templates: dict[str, str]) -> None:
    """These templates found besides the app's (a macro module, say)."""
    monkeypatch.setattr(app.jinja_env, "loader", ChoiceLoader([DictLoader(templates), app.jinja_env.loader]))


def calls_of(monkeypatch, module, name: str) -> list:
    """A list that grows by one at each call of `module.name` (which still answers as before)."""
    calls: list = []
    real = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_strings_and_plurals_in_the_renders_locale(app):
    with app.test_request_context(headers={"Accept-Language": "nb"}):
        nb = render_template_string(PAGE)
        with force_locale("de"):
            de = render_template_string(PAGE)
        with force_locale("en"):
            en_again = render_template_string(PAGE)
    assert nb == "Betal nå|3 regninger|1 regning|100%"
    assert de == "Jetzt bezahlen|3 Rechnungen|1 Rechnung|100%"
    assert en_again == "Pay now|3 bills|1 bill|100%"


def test_values_are_escaped_and_formatted_as_before(app):
    with app.test_request_context(), force_locale("en"):
        said = render_template_string("{{ _('%(name)s paid', name=who) }}", who="<b>Kari</b>")
    assert said == "&lt;b&gt;Kari&lt;/b&gt; paid"


def test_a_macro_imported_without_context_still_translates(app, monkeypatch):
    """An import without context sees no render context: Flask-Babel's translations, the same words."""
    with_templates(app, monkeypatch, {"_macros_test.html": "{% macro pay() %}{{ _('Pay now') }}{% endmacro %}"})
    with app.test_request_context(), force_locale("de"):
        assert render_template_string("{% import '_macros_test.html' as m %}{{ m.pay() }}") == "Jetzt bezahlen"


def test_one_lookup_of_the_translations_per_render(app, monkeypatch):
    looked_up = calls_of(monkeypatch, i18n, "get_translations")
    with app.test_request_context(), force_locale("nb"):
        said = render_template_string("{% for _i in range(20) %}{{ _('Pay now') }} {% endfor %}")
    assert said.count("Betal nå") == 20
    assert len(looked_up) == 1


# --- formatting: money, dates, quantities and rates in the render's locale, looked up once per render -----

FORMATS = ("{{ 123450|money('EUR') }}|{{ day|date }}|{{ day|date('short') }}|{{ qty|quantity }}|"
           "{{ qty|quantity_unit('months') }}|{{ 2500|rate }}|{{ day|date_range(later) }}")


def test_amounts_dates_and_quantities_in_the_renders_locale(app):
    from datetime import date
    from decimal import Decimal

    values = {"day": date(2026, 12, 7), "later": date(2026, 12, 31), "qty": Decimal("2")}
    with app.test_request_context(headers={"Accept-Language": "nb"}):
        nb = render_template_string(FORMATS, **values)
        with force_locale("de"):
            de = render_template_string(FORMATS, **values)
        with force_locale("en"):
            en = render_template_string(FORMATS, **values)
    assert nb.split("|")[:6] == ["1\u00a0234,50\u00a0€", "7. desember 2026", "07.12.2026", "2", "2 måneder",
                                 "25\u00a0%"]
    assert de.split("|")[:6] == ["1.234,50\u00a0€", "7. Dezember 2026", "07.12.26", "2", "2 Monate", "25\u00a0%"]
    assert en.split("|")[:6] == ["€1,234.50", "7 December 2026", "07/12/2026", "2", "2 months", "25\u00a0%"]
    assert "31. Dezember 2026" in de and "31 December 2026" in en


def test_a_macro_imported_without_context_formats_in_the_current_locale(app, monkeypatch):
    with_templates(app, monkeypatch, {"_money_test.html": "{% macro owed(n) %}{{ n|money('EUR') }}{% endmacro %}"})
    with app.test_request_context(), force_locale("de"):
        assert render_template_string("{% import '_money_test.html' as m %}{{ m.owed(500) }}") == "5,00\u00a0€"


def test_one_lookup_of_the_locale_per_render(app, monkeypatch):
    import app.templating as templating

    looked_up = calls_of(monkeypatch, templating, "get_locale")
    with app.test_request_context(), force_locale("nb"):
        said = render_template_string("{% for i in range(20) %}{{ (i * 100)|money('NOK') }} {% endfor %}")
    assert said.count("kr") == 20
    assert len(looked_up) == 1
