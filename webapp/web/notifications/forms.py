from wtforms import RadioField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput

from webapp.messaging.quiet_hours import DAY_NAMES
from webapp.models import NOTIFY_CHOICES
from webapp.web.forms import FlaskForm


class NotificationSettingsForm(FlaskForm):
    """The values are checked by webapp.notifications.emails.save_settings (the rules' one place)."""

    mode = RadioField(
        "Email me when a reply waits",
        choices=[SelectChoice(k, v) for k, v in NOTIFY_CHOICES.items()],
        validate_choice=False,
    )
    time_zone = StringField("My time zone", validators=[Optional(), Length(max=100)])
    work_from = StringField("From", validators=[Optional(), Length(max=20)])
    work_until = StringField("Until", validators=[Optional(), Length(max=20)])
    work_days = SelectMultipleField(
        "On",
        choices=[SelectChoice(str(i + 1), d) for i, d in enumerate(DAY_NAMES)],
        validate_choice=False,
        option_widget=CheckboxInput(),
        validators=[Optional()],
    )


class UnsubscribeForm(FlaskForm):
    # The one-click POST of RFC 8058 carries no token of ours: the signed link is the proof.
    class Meta:
        csrf = False
