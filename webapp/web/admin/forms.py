from flask_wtf.file import FileField
from wtforms import BooleanField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput

from webapp import ids
from webapp.web.forms import FlaskForm


class DocumentForm(FlaskForm):
    """One requirement's document: which accepted kind it is, the value it proves, the file. The checks
    (kind belongs to the requirement, value present, file by content and size) are
    webapp.compliance's, so their messages are the same wherever a document comes from."""

    kind = SelectField("Document", coerce=ids.parse, validate_choice=False, validators=[Optional()])
    value = StringField("Value", validators=[Optional(), Length(max=500)])
    file = FileField("File (PDF, PNG or JPEG, at most 10 MB)")


class SubmitForm(FlaskForm):
    pass


class SettingsForm(FlaskForm):
    """The values are checked by webapp.organizations.settings (the rules' one place), not here."""

    sender_name = StringField("Name candidates see", validators=[Optional(), Length(max=1000)])
    channels = RadioField("Channels", validate_choice=False, validators=[Optional()])
    help_reply = TextAreaField("Reply to HELP and INFO", validators=[Optional(), Length(max=5000)])
    low_credit_threshold = StringField("Warn when credits fall to", validators=[Optional(), Length(max=50)])
    bulk_cap = StringField("Most people in one bulk message", validators=[Optional(), Length(max=50)])
    time_zone = StringField("Time zone", validators=[Optional(), Length(max=100)])
    send_from = StringField("From", validators=[Optional(), Length(max=20)])
    send_until = StringField("Until", validators=[Optional(), Length(max=20)])
    send_days = SelectMultipleField(
        "On", validate_choice=False, option_widget=CheckboxInput(), validators=[Optional()]
    )


class InviteForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=1000)])
    email = StringField("Email", validators=[Optional(), Length(max=1000)])
    roles = SelectMultipleField("Roles", coerce=ids.parse, validate_choice=False, validators=[Optional()])


class RolesForm(FlaskForm):
    roles = SelectMultipleField("Roles", coerce=ids.parse, validate_choice=False, validators=[Optional()])


class TeamsForm(FlaskForm):
    jobs = SelectMultipleField(
        "Hiring teams", coerce=ids.parse, validate_choice=False, validators=[Optional()]
    )
    communities = SelectMultipleField(
        "Sourcing teams", coerce=ids.parse, validate_choice=False, validators=[Optional()]
    )


class NewRoleForm(FlaskForm):
    name = StringField("New role", validators=[Optional(), Length(max=1000)])


class RefillRequestForm(FlaskForm):
    note = TextAreaField("Note for customer success (optional)", validators=[Optional(), Length(max=5000)])


class TemplateForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=1000)])
    channel = RadioField("Channel", validate_choice=False, validators=[Optional()])
    kind = SelectField("Kind", validate_choice=False, validators=[Optional()])
    audience = RadioField("Written for", validate_choice=False, validators=[Optional()])
    subject = StringField("Subject", validators=[Optional(), Length(max=1000)])
    body = TextAreaField("Text", validators=[Optional(), Length(max=60_000)])


class WhatsappTemplateForm(FlaskForm):
    name = StringField("Name (as approved by Meta)", validators=[Optional(), Length(max=1000)])
    locale = StringField("Language", validators=[Optional(), Length(max=100)])
    body = TextAreaField("Approved text", validators=[Optional(), Length(max=10_000)])
    parameters = StringField("Parameters", validators=[Optional(), Length(max=1000)])
    approved = BooleanField("Approved: may be sent")
    audience = RadioField("Written for", validate_choice=False, validators=[Optional()])


class NumberRequestForm(FlaskForm):
    """A request for a sending number. The rules (a country, something to send, preferences that make a
    search, a reason) are webapp.numbers.number_requests'; choices are set per request."""

    country = SelectField("Country", validate_choice=False, validators=[Optional()])
    sms = BooleanField("SMS", default=True)
    whatsapp = BooleanField("WhatsApp")
    area_code = StringField("Area code (optional)", validators=[Optional(), Length(max=20)])
    locality = StringField("Region or city (optional)", validators=[Optional(), Length(max=100)])
    prefix = StringField("Starts with (optional)", validators=[Optional(), Length(max=30)])
    reason = RadioField(
        "Why",
        choices=[
            SelectChoice("new_country", "A new country"),
            SelectChoice("volume", "More volume in a country we text already"),
            SelectChoice("other", "Something else"),
        ],
        validate_choice=False,
        validators=[Optional()],
    )
    note = TextAreaField("In a few words", validators=[Optional(), Length(max=500)])
