"""Forms of the contact pages. Labels and messages are translated lazily; errors show next to their field."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.portal.services import parse_date
from app.support.services import MESSAGE_MAX


class MessageForm(FlaskForm):
    submission = HiddenField()
    message = TextAreaField(_l("Your message"), validators=[
        DataRequired(message=_l("Please write your message.")),
        Length(max=MESSAGE_MAX, message=_l("Please keep it under %(max)d characters.", max=MESSAGE_MAX)),
    ])
    attachment = FileField(_l("Attachment"))


class ContactForm(MessageForm):
    topic = RadioField(_l("What is it about?"), validators=[InputRequired(message=_l("Please choose one."))],
                       validate_choice=False)
    contact_method = RadioField(_l("How should we answer you?"), default="email", validate_choice=False,
                                validators=[InputRequired(message=_l("Please choose one."))])
    email = StringField(_l("E-mail address"), validators=[Optional(), Length(max=254)])
    phone = StringField(_l("Phone number"), validators=[Optional(), Length(max=32)])
    callback_date = StringField(_l("Day for the call"), validators=[Optional(), Length(max=10)])
    callback_window = RadioField(_l("Time for the call"), validators=[Optional()], validate_choice=False)

    def chosen_date(self) -> date | None:
        return parse_date(self.callback_date.data or "")
