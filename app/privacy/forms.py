"""The erasure's confirmation: the agent ticks that they read the warning and types the customer number."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import Length


class EraseForm(FlaskForm):
    understood = BooleanField(_l("I have read what will be erased and what is kept, and the customer asked for it."))
    customer_number = StringField(_l("Type the customer number to confirm"), validators=[Length(max=64)])
