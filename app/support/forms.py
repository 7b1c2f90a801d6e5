"""Forms of the contact pages. Labels and messages are translated lazily; errors show next to their field.

The rules themselves live in support.services (one place for the pages, the CLI and the back
office), which names each problem by field and code; `show_problems` puts them into words here,
so that every problem shows at once. The day of a call is typed or picked (`<input type="date">`
sends 2026-12-31; 31.12.2026 works too)."""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.core.dates import parse_date
from app.core.hours import CALLBACK_DAYS, Window
from app.support.emails import day_words, topic_label, window_words
from app.support.models import TOPICS
from app.support.services import MESSAGE_MAX, SUBMISSION_KEY_MAX


class MessageForm(FlaskForm):
    # The form's one-time key (a double submit finds what the first one made): only a tampered
    # form lacks it, and gets the same 400 as one without its CSRF token.
    submission = HiddenField(validators=[DataRequired(), Length(max=SUBMISSION_KEY_MAX)])
    message = TextAreaField(_l("Your message"), render_kw={"required": True})
    attachment = FileField(_l("Attachment"))


class ContactForm(MessageForm):
    topic = RadioField(_l("What is it about?"), validate_choice=False, render_kw={"required": True})
    contact_method = RadioField(_l("How should we answer you?"), default="email", validate_choice=False,
                                render_kw={"required": True})
    # Each is needed for one way of answering (the services check which): no "(optional)" next to them.
    email = StringField(_l("E-mail address"), render_kw={"required": True})
    phone = StringField(_l("Phone number"), render_kw={"required": True})
    # One of the windows the creditor's call-back hours leave open ("2026-12-07/morning"), grouped by day.
    callback_slot = StringField(_l("When should we call?"), render_kw={"required": True})

    def with_choices(self, windows: list[Window] | None = None) -> ContactForm:
        """The choices' words, in the page's language; `windows`: the call-back windows open now."""
        self.topic.choices = [(topic, topic_label(topic)) for topic in TOPICS]
        self.contact_method.choices = [("email", _("By e-mail")), ("phone", _("Call me back"))]
        days: dict[date, list[tuple[str, str]]] = {}
        for window in windows or []:
            days.setdefault(window.day, []).append((window.value, window_words(window.start, window.end)))
        self.callback_days = [(day_words(day), choices) for day, choices in days.items()]
        return self

    def chosen_slot(self) -> tuple[date | None, str | None]:
        day, _sep, window = (self.callback_slot.data or "").partition("/")
        return parse_date(day), window or None

    def request_fields(self) -> dict:
        """The fields as support.services.open_request and request_problems take them."""
        day, window = self.chosen_slot()
        return {
            "topic": self.topic.data, "message": self.message.data, "contact_method": self.contact_method.data,
            "contact_email": self.email.data, "contact_phone": self.phone.data, "callback_date": day,
            "callback_window": window,
        }


def problem_words(field: str, code: str) -> str:
    """What the customer reads next to the field for a service's problem code."""
    if field == "attachment":
        return attachment_problem(code)
    words = {
        ("topic", "choose"): _("Please choose what it is about."),
        ("message", "required"): _("Please write your message."),
        ("message", "too_long"): _("Please keep it under %(max)d characters.", max=MESSAGE_MAX),
        ("contact_method", "choose"): _("Please choose how we should answer you."),
        ("email", "required"): _("Please enter your e-mail address."),
        ("email", "invalid"): _("Please enter a valid e-mail address, such as name@example.com."),
        ("phone", "required"): _("Please enter the number we should call."),
        ("phone", "invalid"): _("Please enter a valid phone number, such as +47 912 34 567."),
        ("callback_date", "range"): _("Please choose one of the times offered, within the next %(days)d days.",
                                      days=CALLBACK_DAYS),
        ("callback_window", "choose"): _("Please choose a time for the call."),
        ("callback_window", "closed"): _("We cannot call at that time: please choose one of the times offered, "
                                         "when we are open."),
    }
    return words.get((field, code)) or _("Please check this field.")


def attachment_problem(code: str) -> str:
    """The words for `support.attachments.read_upload`'s codes (size, empty, type)."""
    if code == "size":
        return _("The file is larger than %(size)d MB. Please attach a smaller one.",
                 size=current_app.config["ATTACHMENT_MAX_BYTES"] // (1024 * 1024))
    if code == "empty":
        return _("The file is empty. Please attach another one.")
    return _("Please attach a PDF, JPEG or PNG file.")


def show_problems(form: FlaskForm, problems: dict[str, str]) -> None:
    """Put each problem next to its field, in words (one without a field of its own: next to the message)."""
    for name, code in problems.items():
        if name in ("callback_date", "callback_window") and hasattr(form, "callback_slot"):
            if form.callback_slot.errors:
                continue  # one problem with the time for the call is enough
            name_field = form.callback_slot
            name_field.errors = [*name_field.errors, problem_words(name, code)]
            continue
        field = getattr(form, name, None) or form.message
        field.errors = [*field.errors, problem_words(name, code)]
