"""Forms of the contact pages. Labels and messages are translated lazily; errors show next to their field."""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from app.portal.services import parse_date


class MessageForm(FlaskForm):
    submission = HiddenField()
    # Required fields and their words are checked by the service, so that every problem shows at once.
    message = TextAreaField(_l("Your message"), render_kw={"required": True})
    attachment = FileField(_l("Attachment"))


class ContactForm(MessageForm):
    topic = RadioField(_l("What is it about?"), validate_choice=False, render_kw={"required": True})
    contact_method = RadioField(_l("How should we answer you?"), default="email", validate_choice=False,
                                render_kw={"required": True})
    email = StringField(_l("E-mail address"), validators=[Optional(), Length(max=254)])
    phone = StringField(_l("Phone number"), validators=[Optional(), Length(max=32)])
    callback_date = StringField(_l("Day for the call"), validators=[Optional(), Length(max=10)])
    callback_window = RadioField(_l("Time for the call"), validators=[Optional()], validate_choice=False)

    def chosen_date(self) -> date | None:
        return parse_date(self.callback_date.data or "")


def attachment_problem(code: str) -> str:
    """What the customer reads next to the file field (`support.attachments.read_upload`'s codes)."""
    if code == "size":
        return _("The file is larger than %(size)d MB. Please attach a smaller one.",
                 size=current_app.config["ATTACHMENT_MAX_BYTES"] // (1024 * 1024))
    if code == "empty":
        return _("The file is empty. Please attach another one.")
    return _("Please attach a PDF, JPEG or PNG file.")
