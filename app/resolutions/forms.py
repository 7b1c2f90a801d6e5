"""Forms of the self-service pages. Every message is translated lazily and shown next to its field.

Dates are typed or picked (`<input type="date">` sends 2026-12-31; typing 31.12.2026 works too).
Each form carries a one-time `submission` key (a double submit finds the first record) and, where
money or dates change, `confirm`: the first POST shows the terms, the second one carries them out."""

from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, IntegerField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.core.dates import parse_date
from app.resolutions.models import DISPUTE_REASONS

REQUIRED = _l("Please fill in this field.")


class SelfServiceForm(FlaskForm):
    submission = HiddenField()
    confirm = HiddenField()

    @property
    def confirmed(self) -> bool:
        return self.confirm.data == "yes"


def _date_field(label) -> StringField:
    return StringField(label, validators=[DataRequired(message=_l("Please choose a date.")), Length(max=10)])


class DateForm(SelfServiceForm):
    def chosen_date(self) -> date | None:
        return parse_date(self.date.data or "")


class PromiseForm(DateForm):
    date = _date_field(_l("I will pay by"))


class DeferralForm(DateForm):
    date = _date_field(_l("New due date"))


class PlanForm(SelfServiceForm):
    months = IntegerField(_l("How many monthly instalments?"),
                          validators=[InputRequired(message=_l("Please choose one of the plans."))])


class PlanRequestForm(SelfServiceForm):
    # Checked by the service, so that every problem shows at once.
    months = IntegerField(_l("How many monthly instalments would you need?"), validators=[Optional()],
                          render_kw={"required": True, "inputmode": "numeric", "min": 2, "max": 24})
    message = TextAreaField(_l("Tell us a little about your situation"), render_kw={"required": True})


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def scope_choices() -> list[tuple[str, str]]:
    return [("invoice", _("The whole bill")), ("lines", _("One or more lines"))]


def reason_choices() -> list[tuple[str, str]]:
    from app.resolutions.emails import reason_label

    return [(reason, reason_label(reason)) for reason in DISPUTE_REASONS]


class DisputeForm(SelfServiceForm):
    # Required fields and their words are checked by the service, so that every problem shows at once.
    scope = RadioField(_l("What do you dispute?"), default="invoice", validate_choice=False,
                       render_kw={"required": True})
    lines = MultiCheckboxField(_l("Which lines?"), coerce=int, validators=[Optional()], validate_choice=False)
    reason = RadioField(_l("Why?"), validate_choice=False, render_kw={"required": True})
    message = TextAreaField(_l("Tell us what is wrong"), render_kw={"required": True})
    attachment = FileField(_l("Proof (a receipt, a letter, a photo)"))
