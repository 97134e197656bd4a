from datetime import UTC, datetime

from wtforms import BooleanField, DateField, Field, SelectField, StringField, TextAreaField, ValidationError
from wtforms.validators import Length, Optional

from webapp.web.forms import FlaskForm


class AddNumberForm(FlaskForm):
    # Choices are set per request: the providers' accounts' numbers not yet in a pool.
    owned = SelectField("Number on a provider's account", validate_choice=False, validators=[Optional()])
    number = StringField("Or type a number", validators=[Optional(), Length(max=40)])
    # Only for numbers that belong to no country (+800 …); otherwise the number says its country.
    country = SelectField("Country, if the number has none", validate_choice=False, validators=[Optional()])
    sms = BooleanField("SMS", default=True)
    whatsapp = BooleanField("WhatsApp")

    def validate_number(self, field: StringField) -> None:
        if (self.owned.data or "").strip() and (field.data or "").strip():
            raise ValidationError("Pick a number from the account or type one, not both.")

    def refusal_field(self, name: str | None) -> Field | None:
        """Where the pool's refusal goes: about capabilities, beside the SMS box; about the country,
        beside the country; anything else is about the number, beside whichever field gave it."""
        given = self.owned if (self.owned.data or "").strip() else self.number
        return {"capabilities": self.sms, "country": self.country}.get(name or "", given)


class NumberActionForm(FlaskForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=300)])


class ReviewForm(FlaskForm):
    reason = TextAreaField("Reason for rejecting", validators=[Optional(), Length(max=500)])
    # An approval may hold until a date (a register excerpt some months old); `flask compliance expire`
    # then suspends the country's numbers until new documents are approved.
    valid_until = DateField("Valid until (optional)", validators=[Optional()])

    def validate_valid_until(self, field: DateField) -> None:
        if field.data is not None and field.data <= datetime.now(UTC).date():
            raise ValidationError("Choose a date after today, or leave it empty.")


class RefillForm(FlaskForm):
    # Text, not IntegerField: webapp.billing.credits.parse_amount says what is wrong with it, the same
    # way for every caller.
    amount = StringField("Credits to add", validators=[Optional(), Length(max=100)])
    note = StringField("Note (order, ticket or agreement)", validators=[Optional(), Length(max=2000)])


class EntitlementsForm(FlaskForm):
    has_messaging = BooleanField("Messaging (SMS and WhatsApp)")
    has_crm = BooleanField("CRM (communities and prospects)")
    whatsapp_price = StringField("Credits per WhatsApp message", validators=[Optional(), Length(max=50)])


class LinkForm(FlaskForm):
    """A new set-password link for a customer's user: nothing to fill in but the CSRF token."""


class NumberSearchForm(FlaskForm):
    # Digits, with the country's calling code first (the provider's search pattern): "4930" for Berlin.
    pattern = StringField("Starts with (digits, country code first)", validators=[Optional(), Length(max=30)])


class BuyNumberForm(FlaskForm):
    e164 = StringField("Number", validators=[Optional(), Length(max=40)])
    monthly_cost = StringField("Monthly cost", validators=[Optional(), Length(max=20)])


class FinishRequestForm(FlaskForm):
    """Retry the link (and pooling) of the number bought for a request: nothing but the CSRF token."""


class DeclineRequestForm(FlaskForm):
    reason = TextAreaField("Why not (the customer reads it)", validators=[Optional(), Length(max=500)])


class LetInForm(FlaskForm):
    """Let a paused number take new conversations again: nothing to fill in but the CSRF token."""


class NumberCapForm(FlaskForm):
    # Text: webapp.numbers.health.set_cap says what is wrong with it.
    cap = StringField(
        "Most SMS per number per day (empty: the country's guidance)", validators=[Optional(), Length(max=20)]
    )
