"""Forms of the back office's sign-in."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class SignInForm(FlaskForm):
    email = StringField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class CodeForm(FlaskForm):
    code = StringField(_l("Code from your authenticator app"), validators=[DataRequired(), Length(max=12)])


class ReplyForm(FlaskForm):
    message = TextAreaField(_l("Your answer"), validators=[DataRequired(), Length(max=4000)])


#: The decisions open to each kind of resolution waiting for an agent.
DECISIONS = {"dispute": ("rejected", "upheld"), "deferral": ("grant", "decline")}


class DecisionForm(FlaskForm):
    outcome = RadioField(_l("Decision"), validate_choice=False, validators=[DataRequired()])
    message = TextAreaField(_l("Words for the customer"), validators=[DataRequired(), Length(max=4000)])
