"""Forms of the customer pages. Labels and messages are translated lazily."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class StepUpForm(FlaskForm):
    answer = StringField(
        _l("Answer"),
        validators=[DataRequired(message=_l("Please fill in this field.")), Length(max=64)],
    )
