from wtforms import RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional
from wtforms.widgets import DateInput, TimeInput

from webapp import ids
from webapp.forms import FlaskForm
from webapp.interviews.slots import LENGTHS
from webapp.models import CHANNEL_LABELS


class SlotForm(FlaskForm):
    """A new slot. Day and time come as the browser's date and time inputs send them; what they mean
    (the organisation's zone, not in the past) is webapp.interviews.slots' to say."""

    # The browser's date and time inputs (their widgets), which take no maxlength: Length still bounds
    # what a request sends.
    day = StringField("Day", widget=DateInput(), validators=[Optional(), Length(max=20)])
    at = StringField("Starts at", widget=TimeInput(), validators=[Optional(), Length(max=20)])
    minutes = SelectField(
        "Length",
        choices=[SelectChoice(str(n), f"{n} min") for n in LENGTHS],
        coerce=ids.parse,
        validate_choice=False,
        default=30,
    )
    place = StringField("Place or video link", validators=[Optional(), Length(max=2000)])
    interviewer_id = SelectField(
        "Interviewer", coerce=ids.parse, validate_choice=False, validators=[Optional()]
    )


class InviteForm(FlaskForm):
    # Which channel may be used is webapp.messaging.checks' to say (so a refusal names the missing right).
    channel = RadioField(
        "Send as", choices=[SelectChoice(k, v) for k, v in CHANNEL_LABELS.items()], validate_choice=False
    )
    template_id = SelectField(
        "Template",
        coerce=str,
        validate_choice=False,
        validators=[Optional()],
        filters=[lambda v: v if ids.parse(v) is not None else None],
    )
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body = TextAreaField("Message", validators=[Length(max=60_000)])
    # The applications invited at once (the job's list); ids the user may not see are dropped.
    application = SelectMultipleField(coerce=ids.parse, validate_choice=False, validators=[Optional()])
