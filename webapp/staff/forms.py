from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional


class AddNumberForm(FlaskForm):
    # Choices are set per request: the Vonage account's numbers not yet in a pool.
    owned = SelectField("Number on the Vonage account", validate_choice=False, validators=[Optional()])
    number = StringField("Or type a number", validators=[Optional(), Length(max=40)])
    # Only for numbers that belong to no country (+800 …); otherwise the number says its country.
    country = SelectField("Country, if the number has none", validate_choice=False, validators=[Optional()])
    sms = BooleanField("SMS", default=True)
    whatsapp = BooleanField("WhatsApp")


class NumberActionForm(FlaskForm):
    reason = StringField("Reason", validators=[Optional(), Length(max=300)])


class ReviewForm(FlaskForm):
    reason = TextAreaField("Reason for rejecting", validators=[Optional(), Length(max=500)])
