from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from webapp.models import CHANNEL_LABELS


class ComposeForm(FlaskForm):
    # The choices are the user's channels, set per request; which channel may be used is decided by
    # webapp.messaging.checks (so the refusal names the missing right), not by WTForms.
    channel = RadioField(
        "Send as", choices=[SelectChoice(k, v) for k, v in CHANNEL_LABELS.items()], validate_choice=False
    )
    template_id = SelectField("Template", coerce=str, validate_choice=False, validators=[Optional()])
    whatsapp_template_id = SelectField(
        "Approved WhatsApp template",
        coerce=str,
        validate_choice=False,
        validators=[Optional()],
        filters=[lambda v: v if isinstance(v, str) and v.isdigit() else None],
    )
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body = TextAreaField("Message", validators=[Length(max=60_000)])
