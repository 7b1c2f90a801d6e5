"""Forms of the customer pages. Labels and messages are translated lazily."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from app.errors import InvalidData
from app.money import parse_amount


class StepUpForm(FlaskForm):
    answer = StringField(
        _l("Answer"),
        validators=[DataRequired(message=_l("Please fill in this field.")), Length(max=64)],
    )


class PayForm(FlaskForm):
    """The pay buttons: which provider, and (where the creditor allows part payments) how much."""

    provider = StringField(validators=[DataRequired(), Length(max=20)])
    amount = StringField(_l("Amount to pay"), validators=[Optional(), Length(max=20)])

    def amount_minor(self, currency: str) -> int | None:
        """The amount typed, in minor units (`1 250,50` or `1250.50`), None for the whole balance."""
        try:
            return parse_amount(self.amount.data, currency)
        except ValueError as exc:
            raise InvalidData({"amount": str(exc)}) from None
