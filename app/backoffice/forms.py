"""Forms of the back office. Labels are translated lazily; the services check what matters and
report every problem at once, so the validators here only keep out what is not a form at all."""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, PasswordField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.billing.corrections import LineCorrection, LineCredit
from app.core.dates import parse_date
from app.money import parse_amount


class SignInForm(FlaskForm):
    email = StringField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class CodeForm(FlaskForm):
    code = StringField(_l("Code from your authenticator app"), validators=[DataRequired(), Length(max=40)])


class EnrolmentCodeForm(FlaskForm):
    code = StringField(_l("One-time code"), validators=[DataRequired(), Length(max=32)])


class ReplyForm(FlaskForm):
    message = TextAreaField(_l("Your answer"), validators=[DataRequired(), Length(max=4000)])


#: The decisions open to each kind of resolution waiting for an agent.
DECISIONS = {"dispute": ("rejected", "upheld", "partial"), "deferral": ("grant", "decline"),
             "plan": ("grant", "decline")}


class DecisionForm(FlaskForm):
    outcome = RadioField(_l("Decision"), validate_choice=False, validators=[DataRequired()])
    message = TextAreaField(_l("Words for the customer"), validators=[DataRequired(), Length(max=4000)])


class SubmissionForm(FlaskForm):
    """A form whose one-time key makes a double submit one action (a payment, a link sent...)."""

    submission = HiddenField(validators=[DataRequired(), Length(max=64)])

    def fresh(self) -> SubmissionForm:
        if not self.submission.data:
            self.submission.data = secrets.token_urlsafe(16)
        return self


class NoteForm(FlaskForm):
    body = TextAreaField(_l("Internal note"), validators=[DataRequired(), Length(max=4000)])
    invoice_id = IntegerField(validators=[Optional()])


class CallForm(FlaskForm):
    outcome = RadioField(_l("How did the call go?"), validate_choice=False, validators=[DataRequired()])
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


class HoldForm(FlaskForm):
    until = StringField(_l("Pause until (optional)"), validators=[Optional(), Length(max=10)])
    reason = StringField(_l("Why"), validators=[DataRequired(), Length(max=200)])

    def until_date(self) -> date | None:
        return parse_date(self.until.data or "")


class SkipStepForm(FlaskForm):
    reason = StringField(_l("Why"), validators=[DataRequired(), Length(max=200)])


class PostponeStepForm(FlaskForm):
    until = StringField(_l("Postpone to"), validators=[DataRequired(), Length(max=10)])
    reason = StringField(_l("Why"), validators=[DataRequired(), Length(max=200)])

    def until_date(self) -> date | None:
        return parse_date(self.until.data or "")


class ResumeForm(FlaskForm):
    reason = StringField(_l("Why"), validators=[Optional(), Length(max=200)])


class LinkForm(SubmissionForm):
    channel = RadioField(_l("Send it by"), validate_choice=False, validators=[DataRequired()])
    to = StringField(_l("To"), validators=[Optional(), Length(max=254)])


class PaymentForm(SubmissionForm):
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=20)])
    received_on = StringField(_l("Received on"), validators=[DataRequired(), Length(max=10)])
    method = RadioField(_l("How"), validate_choice=False, validators=[DataRequired()])
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


class CreditForm(FlaskForm):
    """A credit note: the per-line amounts come as `credit-<line id>` (read by `line_changes`)."""

    reason = StringField(_l("Reason, as the customer reads it"), validators=[DataRequired(), Length(max=300)])


class RefundForm(SubmissionForm):
    amount = StringField(_l("Amount to pay back"), validators=[DataRequired(), Length(max=20)])
    channel = RadioField(_l("How"), validate_choice=False, validators=[DataRequired()])
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


class MatchForm(FlaskForm):
    invoice = StringField(_l("Invoice number or KID"), validators=[DataRequired(), Length(max=64)])
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


class ReturnForm(FlaskForm):
    note = StringField(_l("What happened to the money"), validators=[DataRequired(), Length(max=500)])


class TemplateForm(FlaskForm):
    creditor_id = IntegerField(validators=[DataRequired()])
    locale = StringField(validators=[DataRequired(), Length(max=8)])
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=100)])
    body = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=4000)])


class AgentAdminForm(FlaskForm):
    creditor_id = IntegerField(validators=[DataRequired()])
    action = StringField(validators=[DataRequired(), Length(max=24)])  # role:<role>, reset_mfa, disable...


def line_changes(data, invoice, *, credits: bool = True, corrections: bool = True):
    """The per-line inputs of a credit or correction form: `credit-<id>` (an amount), and
    `quantity-<id>` with `price-<id>` (a line's new quantity and unit price, net). Returns
    (credits, corrections, errors keyed like the billing services key theirs)."""
    found_credits, found_corrections, errors = [], [], {}
    for line in invoice.lines:
        if credits:
            text = (data.get(f"credit-{line.id}") or "").strip()
            if text:
                try:
                    amount = parse_amount(text, invoice.currency)
                except ValueError:
                    errors[f"credit-{line.id}"] = "not_an_amount"
                else:
                    if amount:
                        found_credits.append(LineCredit(line.id, amount))
        if corrections:
            quantity_text = (data.get(f"quantity-{line.id}") or "").strip().replace(",", ".").replace(" ", "")
            price_text = (data.get(f"price-{line.id}") or "").strip()
            if quantity_text or price_text:
                try:
                    quantity = Decimal(quantity_text) if quantity_text else line.quantity
                    if not quantity.is_finite():
                        raise InvalidOperation
                except InvalidOperation:
                    errors[f"line-{line.id}"] = "quantity"
                    continue
                try:
                    price = parse_amount(price_text, invoice.currency) if price_text else line.unit_price
                except ValueError:
                    errors[f"line-{line.id}"] = "unit_price"
                    continue
                found_corrections.append(LineCorrection(line.id, quantity, price))
    return found_credits, found_corrections, errors
