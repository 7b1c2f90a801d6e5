"""Forms of the customer's contact details and of the unsubscribe page. Labels are translated lazily;
the services check the values (so that every problem is named the same way wherever it comes from)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField
from wtforms.validators import Length, Optional


class EmailForm(FlaskForm):
    email = StringField(_l("New e-mail address"), validators=[Length(max=254)],
                        render_kw={"required": True, "autocomplete": "email", "inputmode": "email"})


class PhoneForm(FlaskForm):
    phone = StringField(_l("New mobile number"), validators=[Length(max=32)],
                        render_kw={"required": True, "autocomplete": "tel", "inputmode": "tel"})


class CodeForm(FlaskForm):
    change = HiddenField(validators=[Length(max=20)])
    code = StringField(_l("Code"), validators=[Length(max=20)],
                       render_kw={"required": True, "autocomplete": "one-time-code", "inputmode": "numeric",
                                  "maxlength": 6, "pattern": "[0-9]{6}"})


class PreferencesForm(FlaskForm):
    preferred_channel = RadioField(_l("How would you like to hear from us first?"), validators=[Optional()],
                                   choices=[("", _l("No preference")), ("email", _l("E-mail")), ("sms", _l("SMS")),
                                            ("letter", _l("Letter"))], validate_choice=False)
    email_allowed = BooleanField(_l("Reminders by e-mail"))
    sms_allowed = BooleanField(_l("Reminders by SMS"))
    electronic_notices_allowed = BooleanField(_l("Legal notices (such as a debt collection warning) electronically "
                                                 "instead of by letter"))


class UnsubscribeForm(FlaskForm):
    """The unsubscribe page's button: nothing but the CSRF token."""
