"""Templates translate with the translations of their render's locale, looked up once per render."""

from __future__ import annotations

from flask import render_template_string
from flask_babel import force_locale
from jinja2 import ChoiceLoader, DictLoader

import app.i18n as i18n

PAGE = ("{{ _('Pay now') }}|{{ ngettext('%(num)d bill', '%(num)d bills', 3) }}|"
        "{{ ngettext('%(num)d bill', '%(num)d bills', 1) }}|{{ _('100%%') }}")


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
    macros = DictLoader({"_macros_test.html": "{% macro pay() %}{{ _('Pay now') }}{% endmacro %}"})
    monkeypatch.setattr(app.jinja_env, "loader", ChoiceLoader([macros, app.jinja_env.loader]))
    with app.test_request_context(), force_locale("de"):
        assert render_template_string("{% import '_macros_test.html' as m %}{{ m.pay() }}") == "Jetzt bezahlen"


def test_one_lookup_of_the_translations_per_render(app, monkeypatch):
    looked_up = []
    real = i18n.get_translations

    def counting():
        looked_up.append(1)
        return real()

    monkeypatch.setattr(i18n, "get_translations", counting)
    with app.test_request_context(), force_locale("nb"):
        said = render_template_string("{% for _i in range(20) %}{{ _('Pay now') }} {% endfor %}")
    assert said.count("Betal nå") == 20
    assert len(looked_up) == 1
